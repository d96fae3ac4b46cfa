"""Progress per step: windows done / total and rate; bars on a terminal, lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any


def _duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``4000`` -> ``1h06m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Reports progress of each pipeline step.

    On a terminal each step gets a tqdm bar (windows done / total, rate); elsewhere (CI
    logs) each update is one plain line.

    Args:
        stream: where to write (default stderr).
        bars: force bars on (True) or off (False); default: bars when ``stream`` is a TTY.
    """

    def __init__(self, stream: IO[str] | None = None, bars: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self._bars: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._done: dict[str, float] = {}
        self._start: dict[str, float] = {}

    def start(self, step: str, total: int) -> None:
        """Begin counting ``total`` windows for ``step``."""
        self._totals[step] = total
        self._done[step] = 0
        self._start[step] = time.monotonic()
        if self.bars:
            from tqdm import tqdm

            self._bars[step] = tqdm(
                total=total,
                desc=f"{step:<11}",
                unit="win",
                position=len(self._bars),
                file=self.stream,
                disable=False,  # the CLI turns library bars off with TQDM_DISABLE, not ours
            )

    def advance(self, step: str, windows: float, note: str = "") -> None:
        """Count ``windows`` more windows of ``step`` as done (``note``: e.g. the partition).

        A fraction is part of a window (the crops of a window predicted patch by patch).
        """
        if step not in self._totals:
            self.start(step, int(windows))
        self._done[step] += windows
        if self.bars:
            self._bars[step].update(windows)
            return
        elapsed = max(time.monotonic() - self._start[step], 1e-9)
        done, total = self._done[step], self._totals[step]
        rate = done / elapsed
        shown = f"{done:.0f}" if abs(done - round(done)) < 1e-6 else f"{done:.1f}"
        left = total - done
        eta = f", ETA {_duration(left / rate)}" if rate > 0 and left > 1e-6 else ""
        self.stream.write(f"[{step}] {shown}/{total} windows ({rate:.1f}/s{eta}) {note}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """One line of news between the counts (above the bars on a terminal)."""
        if self.bars:
            from tqdm import tqdm

            tqdm.write(f"note: {text}", file=self.stream)
        else:
            self.stream.write(f"note: {text}\n")
            self.stream.flush()

    def close(self) -> None:
        """Close the bars."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
