"""Training from scratch on a CPU: batches drawn once and replayed, a slim checkpoint.

The example projects train their checkpoints with this (``data/*/scripts/make_checkpoint.py``):
reading a window's imagery is the slow part on a CPU, so a few passes of rslearn's
training loader (random crops and flips) are drawn once and replayed for every epoch.
The model, data module and trainer are built by rslearn's LightningCLI in this process,
as the runner builds them for a prediction; the checkpoint keeps what a prediction needs.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def training_root() -> Iterator[Path]:
    """A temporary directory for a training run, removed afterwards.

    It is also ``tempfile``'s directory meanwhile: rslearn leaves example lists there.
    """
    old = tempfile.tempdir
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tmp").mkdir()
        tempfile.tempdir = str(root / "tmp")
        try:
            yield root
        finally:
            tempfile.tempdir = old


class _Batches(torch.utils.data.Dataset):
    """Batches drawn once from rslearn's data loader, replayed as a data loader's items."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Any:
        return self.batches[i]


def replay(batches: list[Any], shuffle: bool) -> torch.utils.data.DataLoader:
    """A data loader over ready batches (seeded shuffling)."""
    gen = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        _Batches(batches), batch_size=None, shuffle=shuffle, generator=gen, collate_fn=lambda b: b
    )


# The trainer of a from-scratch CPU fit: no logger, no progress bar, no checkpoints (the
# state is saved slim afterwards), no callbacks (a prediction writer has nothing to do).
CPU_TRAINER: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "strategy": "auto",
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "num_sanity_val_steps": 0,
    "callbacks": [],
}


def fit_replayed(
    cfg: dict[str, Any], root: Path, project: Path, source: Path, epochs: int, passes: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """Fit a model config on the CPU; returns the module's state and last metrics.

    Args:
        cfg: a LightningCLI config (model, data, trainer) whose data module reads the
            training dataset at ``${DATASET_PATH}`` = ``root/ds``; its trainer gets
            :data:`CPU_TRAINER`, ``epochs`` and seed 0, its autocast is turned off on the CPU.
        root: the training run's directory (:func:`training_root`).
        project: the project (``${EXTRA_FILES_PATH}`` is its ``extra_model_files/``).
        source: the file the config comes from, for messages.
        epochs: epochs over the replayed batches.
        passes: how many passes of the training loader are drawn (then replayed each epoch).
    """
    import yaml

    from rslp.runner.inference import cpu_autocast, lightning_cli
    from rslp.templates import EXTRA_FILES_DIR, template_env

    cfg["seed_everything"] = 0
    cfg.setdefault("trainer", {}).update(max_epochs=epochs, **CPU_TRAINER)
    cpu_autocast(cfg, source)
    config_file = root / "fit.yaml"
    config_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {
        "DATASET_PATH": str(root / "ds"),
        "EXTRA_FILES_PATH": str(project / EXTRA_FILES_DIR),
        "NUM_WORKERS": "0",
        "TRAINER_DATA_PATH": str(root / "trainer"),
    }
    with template_env(env):
        cli = lightning_cli(["--config", str(config_file)], False, "fit", source.name)
        dm = cli.datamodule
        dm.setup("fit")
        train = [b for _ in range(passes) for b in dm.train_dataloader()]
        val = list(dm.val_dataloader())
        print(f"training on {len(train)} batches x {epochs} epochs, {len(val)} val batches")
        cli.trainer.fit(
            cli.model, train_dataloaders=replay(train, True), val_dataloaders=replay(val, False)
        )
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    state = {
        "state_dict": {k: v.detach().clone() for k, v in cli.model.state_dict().items()},
        "epoch": cli.trainer.current_epoch,
        "global_step": cli.trainer.global_step,
    }
    return state, metrics


def save_slim(state: dict[str, Any], out: Path, metrics: dict[str, float]) -> None:
    """Write what Lightning's predict needs (no optimizer state), under a temporary name.

    Prints the validation metrics and the file's size.
    """
    import lightning

    state = {**state, "pytorch-lightning_version": lightning.__version__, "hyper_parameters": {}}
    part = out.with_name(f".{out.name}.tmp")
    torch.save(state, part)
    shutil.move(part, out)
    for k in sorted(metrics):
        if k.startswith(("val_", "train_loss")):
            print(f"{k}: {metrics[k]:.4f}")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
