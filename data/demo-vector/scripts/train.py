"""Train the vector demo's checkpoint (per-window water/land classification).

Usage: python data/demo-vector/scripts/train.py [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT.parent / "demo" / "scripts"))
from training import fit_and_save  # noqa: E402

WINDOW = 32


def write_label(window: Any, water: np.ndarray) -> None:
    """The label: one feature over the window, ``category`` = the majority class."""
    import shapely
    from rslearn.config import LayerConfig
    from rslearn.utils.feature import Feature
    from rslearn.utils.geometry import STGeometry

    cfg = LayerConfig.model_validate(
        json.loads((PROJECT / "dataset.json").read_text())["layers"]["label"]
    )
    category = "water" if water.mean() > 0.5 else "land"
    feat = Feature(
        STGeometry(window.projection, shapely.box(*window.bounds), None), {"category": category}
    )
    with window.data.open_layer_writer("label") as writer:
        writer.write_vector(cfg.instantiate_vector_format(), [feat])


def main() -> None:
    """Train and write the checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", type=Path, default=PROJECT / "checkpoint.ckpt")
    args = ap.parse_args()
    fit_and_save(PROJECT, WINDOW, write_label, args.epochs, args.out)


if __name__ == "__main__":
    main()
