"""A Lightning callback that reports prediction progress in windows.

Its own module so that importing the runner does not import Lightning: only a process
that builds a model (:class:`rslp.runner.inference.Predictor`) imports this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lightning.pytorch import Callback


class WindowCounter(Callback):
    """Counts windows as the prediction writer finishes them, and when prediction starts.

    Runs after the RslearnWriter (callbacks run in list order). Each crop written counts
    as its share of its window (``1 / num_crops_in_window``), so progress moves within a
    window predicted patch by patch (``load_all_patches``), not only at its end.
    """

    def __init__(self) -> None:
        self.on_windows: Callable[[float], None] | None = None
        self.predict_started: float | None = None

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        """Note when the predict loop starts (set-up ends here)."""
        self.predict_started = time.perf_counter()

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Report the share of windows this batch's crops finished."""
        metadatas = batch[2] if isinstance(batch, tuple | list) and len(batch) == 3 else []
        done = sum(1 / max(1, int(getattr(m, "num_crops_in_window", 1))) for m in metadatas)
        if done and self.on_windows is not None:
            self.on_windows(done)
