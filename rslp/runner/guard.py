"""Turn ``sys.exit`` inside library code into a step error.

rslearn and jsonargparse parse arguments with argparse, which prints to stderr and calls
``sys.exit`` on a bad config. Inside the runner that must become an error that names the
step, never a silent exit or a hang.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator

from rslp.errors import StepError


class _Tee(io.StringIO):
    """Keeps what is written and still forwards it to the real stream."""

    def __init__(self, stream: object) -> None:
        super().__init__()
        self._stream = stream

    def write(self, s: str) -> int:
        getattr(self._stream, "write", lambda _: None)(s)
        return super().write(s)


@contextlib.contextmanager
def trap_exit(step: str, partition_id: str | None = None, what: str = "") -> Iterator[None]:
    """Convert ``SystemExit`` raised in the block into :class:`StepError`.

    Args:
        step: the step name for the error.
        partition_id: the partition being processed.
        what: a short description of the call, for the message.
    """
    tee = _Tee(sys.stderr)
    try:
        with contextlib.redirect_stderr(tee):
            yield
    except SystemExit as e:
        lines = [ln.strip() for ln in tee.getvalue().splitlines() if ln.strip()]
        detail = " ".join(lines[-4:]) if lines else f"exit status {e.code}"
        prefix = f"{what}: " if what else ""
        raise StepError(step, f"{prefix}{detail}", partition_id) from None
