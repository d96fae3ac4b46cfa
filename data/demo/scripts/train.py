"""Train the demo checkpoint on a synthetic scene that the demo request never sees.

Renders a training scene with random lakes (same generator as the demo imagery, other
lakes, other place), builds an rslearn dataset over it with the project's dataset.json,
writes the water mask into the ``label`` layer, fits model.yaml with rslearn's Lightning
CLI and saves the weights to ``checkpoint.ckpt`` (a few tens of kB).

Usage: python data/demo/scripts/train.py [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from rasterio.crs import CRS as RasterioCRS  # noqa: N811
from upath import UPath

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import CRS, RESOLUTION, random_lakes, render, write_geotiff  # noqa: E402

from rslp.runner.inference import DATASET_PATH_VAR, env_var, run_lightning  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
ORIGIN = (520000.0, 5100000.0)
SIZE = 1024
WINDOW = 128


def build_training_dataset(root: Path) -> None:
    """Render the training scene and make an rslearn dataset with image and label layers."""
    from rslearn.dataset import Dataset, Window
    from rslearn.dataset.manage import (
        ingest_dataset_windows,
        materialize_dataset_windows,
        prepare_dataset_windows,
    )
    from rslearn.utils.geometry import Projection
    from rslearn.utils.raster_array import RasterArray

    rng = np.random.default_rng(2024)
    image, water = render(ORIGIN, SIZE, random_lakes(rng, ORIGIN, SIZE, 14), seed=2024)
    write_geotiff(root / "src" / "scene.tif", image, ORIGIN)
    cfg = json.loads((PROJECT / "dataset.json").read_text())
    cfg["layers"]["image"]["data_source"]["init_args"]["src_dir"] = str(root / "src")
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "config.json").write_text(json.dumps(cfg))
    dataset = Dataset(UPath(root / "ds"))
    proj = Projection(RasterioCRS.from_string(CRS), RESOLUTION, -RESOLUTION)
    col0, row0 = int(ORIGIN[0] / RESOLUTION), int(-ORIGIN[1] / RESOLUTION)
    label_cfg = dataset.layers["label"].band_sets[0]
    windows = []
    n = SIZE // WINDOW
    for i in range(n):
        for j in range(n):
            bounds = (
                col0 + j * WINDOW,
                row0 + i * WINDOW,
                col0 + (j + 1) * WINDOW,
                row0 + (i + 1) * WINDOW,
            )
            split = "val" if (i * n + j) % 5 == 0 else "train"
            w = Window(dataset.storage, "train", f"w_{i}_{j}", proj, bounds, None, {"split": split})
            w.save()
            windows.append(w)
    windows = dataset.load_windows(groups=["train"])
    prepare_dataset_windows(dataset, windows)
    ingest_dataset_windows(dataset, windows)
    materialize_dataset_windows(dataset, windows)
    for w in windows:
        c0, r0 = w.bounds[0] - col0, w.bounds[1] - row0
        label = water[r0 : r0 + WINDOW, c0 : c0 + WINDOW][None].astype(np.uint8)
        with w.data.open_layer_writer("label") as writer:
            writer.write_raster(
                ["label"],
                label_cfg.instantiate_raster_format(),
                w.projection,
                w.bounds,
                RasterArray(chw_array=label),
            )
        w.mark_layer_completed("label")
        assert w.is_layer_completed("image"), f"window {w.name} did not materialize"


def main() -> None:
    """Train and write the checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=PROJECT / "checkpoint.ckpt")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tmp").mkdir()
        tempfile.tempdir = str(root / "tmp")  # rslearn leaves example lists in TMPDIR
        build_training_dataset(root)
        cfg = yaml.safe_load((PROJECT / "model.yaml").read_text())
        cfg["trainer"].update(
            max_epochs=args.epochs,
            default_root_dir=str(root / "logs"),
            enable_progress_bar=False,
            callbacks=[],
        )
        cfg["seed_everything"] = 0
        with env_var(DATASET_PATH_VAR, str(root / "ds")):
            run_lightning("fit", cfg, root / "fit.yaml", None)
        ckpts = sorted((root / "logs").rglob("*.ckpt"))
        if not ckpts:
            raise SystemExit("training wrote no checkpoint")
        state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
        slim = {
            k: state[k]
            for k in ("state_dict", "epoch", "global_step", "pytorch-lightning_version")
            if k in state
        }
        slim["hyper_parameters"] = {}
        tmp_out = args.out.with_name(args.out.name + ".tmp")
        torch.save(slim, tmp_out)
        shutil.move(tmp_out, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
