"""Train this project's checkpoint.ckpt: model.yaml fitted on a synthetic training landscape.

The training landscape comes from the same generator as the project's imagery
(scripts/synthetic.py) but with another seed, another place and four times the area, so
the prediction over imagery/ is checked against truth/cropland.tif on parcels the model
never saw. Its three scenes are read through the project's own dataset.json (LocalFiles
with the same raster_item_specs, pointed at a temporary directory) into 64 windows of
64 px, the labels are written into the ``label`` layer, and model.yaml's model, data
module and trainer are built by rslearn's LightningCLI in-process, as the runner builds
them. The OlmoEarth Nano encoder starts from random weights (``random_initialization``)
and runs without autocast on a CPU (as the runner does there). Differences from
model.yaml, for training from scratch on a CPU: learning rate 5e-4 without the plateau
schedule, and batches drawn once and replayed (see ``fit``).

The saved checkpoint keeps only what prediction needs (state_dict, epoch, global_step,
Lightning version), about 4 MB. Everything is seeded: on one machine two runs write the
same weights (2.5 to 5 minutes on 2 CPU cores; validation accuracy about 0.98).

Usage: python data/olmoearth-cropland/scripts/make_checkpoint.py [--epochs N] [--passes N]
       [--lr LR] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import CRS, RESOLUTION, write_scenes  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
TRAIN_ORIGIN = (296960.0, 965120.0)  # 14 km north-north-east of the prediction scene
TRAIN_SIZE = 512
TRAIN_SEED = 7
WINDOW = 64  # px; 64 windows, every fifth one for validation
GROUP = "cropland"
SEASON = (datetime(2020, 5, 1, tzinfo=UTC), datetime(2020, 11, 30, tzinfo=UTC))


def build_training_dataset(root: Path) -> None:
    """Write the training scenes and an rslearn dataset of labeled windows under ``root``."""
    from rasterio.crs import CRS as RasterioCRS  # noqa: N811
    from rslearn.dataset import Dataset, Window
    from rslearn.dataset.manage import (
        ingest_dataset_windows,
        materialize_dataset_windows,
        prepare_dataset_windows,
    )
    from rslearn.utils.geometry import Projection
    from rslearn.utils.raster_array import RasterArray
    from upath import UPath

    labels = write_scenes(root / "src", TRAIN_ORIGIN, TRAIN_SIZE, TRAIN_SEED)
    cfg = json.loads((PROJECT / "dataset.json").read_text())
    cfg["layers"]["sentinel2"]["data_source"]["init_args"]["src_dir"] = str(root / "src")
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "config.json").write_text(json.dumps(cfg))
    dataset = Dataset(UPath(root / "ds"))
    proj = Projection(RasterioCRS.from_string(CRS), RESOLUTION, -RESOLUTION)
    col0, row0 = int(TRAIN_ORIGIN[0] / RESOLUTION), int(-TRAIN_ORIGIN[1] / RESOLUTION)
    n = TRAIN_SIZE // WINDOW
    for i in range(n):
        for j in range(n):
            bounds = (
                col0 + j * WINDOW,
                row0 + i * WINDOW,
                col0 + (j + 1) * WINDOW,
                row0 + (i + 1) * WINDOW,
            )
            split = "val" if (i * n + j) % 5 == 2 else "train"
            Window(
                dataset.storage, GROUP, f"w_{i}_{j}", proj, bounds, SEASON, {"split": split}
            ).save()
    windows = dataset.load_windows(groups=[GROUP])
    prepare_dataset_windows(dataset, windows)
    ingest_dataset_windows(dataset, windows)
    materialize_dataset_windows(dataset, windows)
    label_format = dataset.layers["label"].band_sets[0].instantiate_raster_format()
    for w in windows:
        groups = [g for g in range(3) if w.is_layer_completed("sentinel2", g)]
        if groups != [0, 1, 2]:
            raise SystemExit(f"window {w.name}: sentinel2 item groups {groups}, want 3")
        c, r = w.bounds[0] - col0, w.bounds[1] - row0
        with w.data.open_layer_writer("label") as writer:
            writer.write_raster(
                ["category"],
                label_format,
                w.projection,
                w.bounds,
                RasterArray(
                    chw_array=labels[None, r : r + WINDOW, c : c + WINDOW].astype(np.int32)
                ),
            )
        w.mark_layer_completed("label")


def fit(root: Path, epochs: int, passes: int, lr: float) -> tuple[dict, dict[str, float]]:
    """Fit model.yaml on the training dataset; returns the module's state and val metrics.

    model.yaml's model, data module, transforms and trainer are built by rslearn's
    LightningCLI (without running it). Reading a window's three scenes is the slow part on
    a CPU, so ``passes`` passes of the training loader (random 16 px crops and flips) are
    drawn once and replayed for ``epochs`` epochs: from random weights the encoder needs
    about 1,500 steps.
    """
    from rslp.finetune.replay import fit_replayed

    cfg = yaml.safe_load((PROJECT / "model.yaml").read_text())
    init = cfg["model"]["init_args"]
    init["optimizer"]["init_args"]["lr"] = lr
    # The plateau schedule is for fine-tuning a pretrained encoder; from random weights the
    # loss stays flat for a while before it falls, and the schedule would cut the rate there.
    init.pop("scheduler", None)
    return fit_replayed(cfg, root, PROJECT, PROJECT / "model.yaml", epochs, passes)


def main() -> None:
    """Build the training data, fit, and write the slim checkpoint."""
    from rslp.finetune.replay import save_slim, training_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--passes", type=int, default=16, help="training loader passes drawn")
    ap.add_argument("--lr", type=float, default=5e-4, help="model.yaml says 1e-4 (fine-tuning)")
    ap.add_argument("--out", type=Path, default=PROJECT / "checkpoint.ckpt")
    args = ap.parse_args()
    torch.manual_seed(0)
    with training_root() as root:
        build_training_dataset(root)
        slim, metrics = fit(root, args.epochs, args.passes, args.lr)
    save_slim(slim, args.out, metrics)


if __name__ == "__main__":
    main()
