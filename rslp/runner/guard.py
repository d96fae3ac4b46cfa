"""Turn ``sys.exit`` inside library code into a step error.

rslearn and jsonargparse parse arguments with argparse, which prints to stderr and calls
``sys.exit`` on a bad config. Inside the runner that must become an error that names the
step, never a silent exit or a hang.
"""

from __future__ import annotations

import contextlib
import io
import re
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


_KEY = re.compile(r'Parser key "([^"]+)":')


def argparse_error(text: str) -> str | None:
    """The gist of what argparse/jsonargparse printed before exiting.

    jsonargparse nests its errors (``Parser key "data": ... Parser key "task": ...``)
    and ends with a dump of the given value; the gist is the key path and the innermost
    message, e.g. ``data.task.num_classes: Expected a <class 'int'>. Got value: two``.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    if not starts:
        return " ".join(lines[-4:]) or None
    body = [ln for ln in lines[starts[-1] :] if not ln.startswith("Given value")]
    keys = [(i, m.group(1)) for i, ln in enumerate(body) for m in [_KEY.search(ln)] if m]
    if not keys:
        return " ".join(body)[len("error: ") :]
    last = keys[-1][0]
    inner = body[last + 1] if last + 1 < len(body) else body[last]
    return f"{'.'.join(k for _, k in keys)}: {inner}"


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
        detail = argparse_error(tee.getvalue()) or f"exit status {e.code}"
        prefix = f"{what}: " if what else ""
        raise StepError(step, f"{prefix}{detail}", partition_id) from None
