"""Shared by the demos' train.py scripts: a synthetic training dataset, a fit, a checkpoint.

The training scene uses the same generator as the demo imagery but other lakes in
another place, so a demo's predictions are checked against truth the model never saw.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rasterio.crs import CRS as RasterioCRS  # noqa: N811
from synthetic import CRS, RESOLUTION, random_lakes, render, write_geotiff
from upath import UPath

from rslp.runner.inference import run_lightning
from rslp.templates import DATASET_PATH, template_env

ORIGIN = (520000.0, 5100000.0)
SIZE = 1024

# (window, water mask of the window) -> writes the window's label layer
LabelWriter = Callable[[Any, np.ndarray], None]


def build_training_dataset(
    project: Path, root: Path, window: int, write_label: LabelWriter
) -> None:
    """Render the training scene and make an rslearn dataset of ``window``-pixel windows.

    The image layer is materialized through the project's own dataset.json (LocalFiles);
    ``write_label`` writes each window's label from the scene's water mask.
    """
    from rslearn.dataset import Dataset, Window
    from rslearn.dataset.manage import (
        ingest_dataset_windows,
        materialize_dataset_windows,
        prepare_dataset_windows,
    )
    from rslearn.utils.geometry import Projection

    rng = np.random.default_rng(2024)
    image, water = render(ORIGIN, SIZE, random_lakes(rng, ORIGIN, SIZE, 14), seed=2024)
    write_geotiff(root / "src" / "scene.tif", image, ORIGIN)
    cfg = json.loads((project / "dataset.json").read_text())
    cfg["layers"]["image"]["data_source"]["init_args"]["src_dir"] = str(root / "src")
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "config.json").write_text(json.dumps(cfg))
    dataset = Dataset(UPath(root / "ds"))
    proj = Projection(RasterioCRS.from_string(CRS), RESOLUTION, -RESOLUTION)
    col0, row0 = int(ORIGIN[0] / RESOLUTION), int(-ORIGIN[1] / RESOLUTION)
    n = SIZE // window
    for i in range(n):
        for j in range(n):
            b = (
                col0 + j * window,
                row0 + i * window,
                col0 + (j + 1) * window,
                row0 + (i + 1) * window,
            )
            split = "val" if (i * n + j) % 5 == 0 else "train"
            Window(dataset.storage, "train", f"w_{i}_{j}", proj, b, None, {"split": split}).save()
    windows = dataset.load_windows(groups=["train"])
    prepare_dataset_windows(dataset, windows)
    ingest_dataset_windows(dataset, windows)
    materialize_dataset_windows(dataset, windows)
    for w in windows:
        assert w.is_layer_completed("image"), f"window {w.name} did not materialize"
        c0, r0 = w.bounds[0] - col0, w.bounds[1] - row0
        write_label(w, water[r0 : r0 + window, c0 : c0 + window])
        w.mark_layer_completed("label")


def fit_and_save(
    project: Path, window: int, write_label: LabelWriter, epochs: int, out: Path
) -> None:
    """Train the project's model.yaml on a synthetic scene and save a slim checkpoint."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tmp").mkdir()
        tempfile.tempdir = str(root / "tmp")  # rslearn leaves example lists in TMPDIR
        build_training_dataset(project, root, window, write_label)
        cfg = yaml.safe_load((project / "model.yaml").read_text())
        cfg["trainer"].update(
            max_epochs=epochs,
            default_root_dir=str(root / "logs"),
            enable_progress_bar=False,
            callbacks=[],
        )
        cfg["seed_everything"] = 0
        with template_env({DATASET_PATH: str(root / "ds")}):
            run_lightning("fit", cfg, root / "fit.yaml", None)
        ckpts = sorted((root / "logs").rglob("*.ckpt"))
        if not ckpts:
            raise SystemExit("training wrote no checkpoint")
        state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
        keep = ("state_dict", "epoch", "global_step", "pytorch-lightning_version")
        slim = {k: state[k] for k in keep if k in state}
        slim["hyper_parameters"] = {}
        tmp_out = out.with_name(out.name + ".tmp")
        torch.save(slim, tmp_out)
        shutil.move(tmp_out, out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
