"""Train the raster demo's checkpoint (water/land segmentation).

Usage: python data/demo/scripts/train.py [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import fit_and_save  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def write_label(window: Any, water: np.ndarray) -> None:
    """The label raster: 1 water, 0 land."""

    from rslearn.config import LayerConfig
    from rslearn.utils.raster_array import RasterArray

    cfg = LayerConfig.model_validate(
        json.loads((PROJECT / "dataset.json").read_text())["layers"]["label"]
    )
    with window.data.open_layer_writer("label") as writer:
        writer.write_raster(
            ["label"],
            cfg.band_sets[0].instantiate_raster_format(),
            window.projection,
            window.bounds,
            RasterArray(chw_array=water[None].astype(np.uint8)),
        )


def main() -> None:
    """Train and write the checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=PROJECT / "checkpoint.ckpt")
    args = ap.parse_args()
    fit_and_save(PROJECT, 128, write_label, args.epochs, args.out)


if __name__ == "__main__":
    main()
