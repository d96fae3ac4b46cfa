"""Train this project's checkpoint.ckpt from olmoearth_config.yaml's transpiled configs.

The dataset config and model config are what esrunner makes of olmoearth_config.yaml
(rslp.formats.unified.transpile), so the checkpoint fits the model a run builds. For
training they get what prediction leaves out: the ``labels`` layer filled from a synthetic
training landscape (scripts/synthetic.py, another seed and place, three times the area),
a target input per head, random crops and flips, and an optimizer. The OlmoEarth Nano
encoder starts from random weights (extra_model_files/config.json alone) and runs without
autocast on a CPU. Reading the windows is the slow part on a CPU, so the training loader's
batches are drawn once and replayed each epoch.

The saved checkpoint keeps what prediction needs (state_dict, epoch, global_step, the
Lightning version). Everything is seeded.

Usage: python data/olmoearth-change/scripts/make_checkpoint.py [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import CRS, RESOLUTION, write_landscape  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
FIELDS = ("before", "after", "change")
TRAIN_ORIGIN = (503040.0, 5003520.0)  # 2.5 km north-east of the prediction scene
TRAIN_SIZE = 448
TRAIN_SEED = 7
WINDOW = 64
GROUP = "train"
WHEN = datetime(2021, 6, 1, tzinfo=UTC)


def transpiled(src: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(dataset config, model config) of the project, its local imagery moved under ``src``.

    Each layer reads a directory of its own (``src/<layer>``), as the runner mirrors them:
    LocalFiles keeps its item index in its directory, so two layers listing other files
    of one directory would both get the first one's items.
    """
    from rslp.formats.unified import problems_of, read_overrides
    from rslp.formats.unified.transpile import transpile

    cfg, problems = problems_of(yaml.safe_load((PROJECT / "olmoearth_config.yaml").read_text()))
    overrides, more = read_overrides(PROJECT)
    errors = [p for p in problems + more if p.severity == "error"]
    if cfg is None or errors:
        raise SystemExit(f"olmoearth_config.yaml: {errors[0].message}")
    for layer, source in (overrides or {}).items():
        source["init_args"]["src_dir"] = str(src / layer)
    t = transpile(cfg, PROJECT, overrides)
    return t.dataset, t.model


def build_training_dataset(root: Path, dataset_cfg: dict[str, Any]) -> None:
    """Training scenes, windows with their imagery materialized, and the labels layer."""
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

    land = write_landscape(root / "scenes", None, TRAIN_ORIGIN, TRAIN_SIZE, TRAIN_SEED)
    for layer in dataset_cfg["layers"].values():
        src = layer.get("data_source", {}).get("init_args", {}).get("src_dir")
        if src:  # a directory per layer, the scenes linked in
            Path(src).mkdir(parents=True)
            for scene in (root / "scenes").iterdir():
                (Path(src) / scene.name).symlink_to(scene)
    (root / "ds").mkdir()
    (root / "ds" / "config.json").write_text(json.dumps(dataset_cfg))
    dataset = Dataset(UPath(root / "ds"))
    proj = Projection(RasterioCRS.from_string(CRS), RESOLUTION, -RESOLUTION)
    col0, row0 = int(TRAIN_ORIGIN[0] / RESOLUTION), int(-TRAIN_ORIGIN[1] / RESOLUTION)
    n = TRAIN_SIZE // WINDOW
    for i in range(n):
        for j in range(n):
            split = "val" if (i * n + j) % 6 == 3 else "train"
            bounds = (
                col0 + j * WINDOW,
                row0 + i * WINDOW,
                col0 + (j + 1) * WINDOW,
                row0 + (i + 1) * WINDOW,
            )
            Window(
                dataset.storage, GROUP, f"w_{i}_{j}", proj, bounds, (WHEN, WHEN), {"split": split}
            ).save()
    windows = dataset.load_windows(groups=[GROUP])
    prepare_dataset_windows(dataset, windows)
    ingest_dataset_windows(dataset, windows)
    materialize_dataset_windows(dataset, windows)
    fmt = dataset.layers["labels"].band_sets[0].instantiate_raster_format()
    for w in windows:
        for layer in ("sentinel2_l2a_lookbehind_0", "sentinel2_l2a_lookbehind_1"):
            if not w.is_layer_completed(layer):
                raise SystemExit(f"window {w.name}: {layer} was not materialized")
        c, r = w.bounds[0] - col0, w.bounds[1] - row0
        with w.data.open_layer_writer("labels") as writer:
            for f in FIELDS:
                chw = land[f][None, r : r + WINDOW, c : c + WINDOW].astype(np.int32)
                writer.write_raster([f], fmt, w.projection, w.bounds, RasterArray(chw_array=chw))
        w.mark_layer_completed("labels")


def training_config(model: dict[str, Any], lr: float) -> dict[str, Any]:
    """The transpiled model config with targets, crops, flips and an optimizer added."""
    cfg = json.loads(json.dumps(model))
    cfg["model"]["init_args"]["optimizer"] = {
        "class_path": "rslearn.train.optimizer.AdamW",
        "init_args": {"lr": lr},
    }
    data = cfg["data"]["init_args"]
    data.update(batch_size=8, num_workers=0)
    task = data["task"]["init_args"]
    selectors = ["sentinel2_l2a"]
    for f in FIELDS:
        data["inputs"][f"{f}_label"] = {
            "data_type": "raster",
            "layers": ["labels"],
            "bands": [f],
            "is_target": True,
            "dtype": "INT32",
        }
        task["input_mapping"][f] = {f"{f}_label": "targets"}
        selectors += [f"target/{f}/classes", f"target/{f}/valid"]
    normalize = data["default_config"]["transforms"]
    crop = data["default_config"].get("crop_size", 32)
    flip = {
        "class_path": "rslearn.train.transforms.flip.Flip",
        "init_args": {"image_selectors": selectors},
    }
    data["train_config"] = {
        "crop_size": crop,
        "transforms": [flip, *normalize],
        "tags": {"split": "train"},
    }
    data["val_config"] = {"crop_size": crop, "load_all_crops": True, "tags": {"split": "val"}}
    return cfg


def fit(
    root: Path, model: dict[str, Any], epochs: int, passes: int, lr: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Fit on the CPU; returns the module's state and the last validation metrics."""
    from rslp.finetune.replay import fit_replayed

    cfg = training_config(model, lr)
    return fit_replayed(cfg, root, PROJECT, PROJECT / "olmoearth_config.yaml", epochs, passes)


def main() -> None:
    """Build the training data, fit, and write the checkpoint under a temporary name."""
    from rslp.finetune.replay import save_slim, training_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--passes", type=int, default=12, help="training loader passes drawn")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--out", type=Path, default=PROJECT / "checkpoint.ckpt")
    args = ap.parse_args()
    torch.manual_seed(0)
    with training_root() as root:
        dataset_cfg, model_cfg = transpiled(root / "src")
        build_training_dataset(root, dataset_cfg)
        state, metrics = fit(root, model_cfg, args.epochs, args.passes, args.lr)
    save_slim(state, args.out, metrics)


if __name__ == "__main__":
    main()
