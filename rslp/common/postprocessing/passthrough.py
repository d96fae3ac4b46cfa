"""Partition and dataset stages that pass window artifacts through unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

from rslp.common.postprocessing.interface import OutputLayer, PostprocessInterface
from rslp.fsutil import atomic_path


def copy_all(inputs: list[Path], out_dir: Path) -> list[Path]:
    """Copy files into ``out_dir`` (atomically each), keeping their names, sorted."""
    out = []
    for src in sorted(inputs):
        dst = out_dir / src.name
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        out.append(dst)
    return out


class PassThrough(PostprocessInterface):
    """Base for strategies whose partition and dataset stages copy artifacts as they are.

    Subclasses implement :meth:`process_window` only; the result is one file per window.
    """

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Copy the window artifacts."""
        return copy_all(inputs, out_dir)

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Copy every artifact into the results."""
        return copy_all(inputs, out_dir)
