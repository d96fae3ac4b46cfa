"""Inference step: rslearn's Lightning predict on one partition, in-process."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from rslp.errors import ProjectError, StepError
from rslp.plugins import class_nodes, import_class, key_str
from rslp.runner.context import WRITER_CLASS, RunContext
from rslp.runner.dataset import open_dataset
from rslp.runner.guard import trap_exit
from rslp.runner.partition import partition_windows
from rslp.runner.scratch import atomic_path

logger = logging.getLogger(__name__)
DATASET_PATH_VAR = "DATASET_PATH"


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of the block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def predict_config(ctx: RunContext, partition_id: str) -> dict[str, Any]:
    """model.yaml adjusted to predict one partition of the scratch dataset.

    - the data module reads the scratch dataset (``${DATASET_PATH}`` is set to it, and a
      missing or different ``path`` is pointed there), only the partition's group, and
      skips windows whose output layer is already complete (resume);
    - the trainer runs on one device without DDP or a logger, logs under scratch/logs.
    """
    cfg = copy.deepcopy(ctx.model_config)
    ds_path = str(ctx.scratch.dataset)
    data = cfg.get("data")
    if not isinstance(data, dict):
        raise ProjectError(ctx.files.model_yaml, "no data module configured", "data")
    init = data.setdefault("init_args", {})
    path = init.get("path")
    if path not in (None, ds_path, f"${{{DATASET_PATH_VAR}}}"):
        logger.warning("model.yaml data.init_args.path=%s replaced by %s", path, ds_path)
    init["path"] = ds_path
    pc = init.get("predict_config") or {}
    split_args = pc.setdefault("init_args", {}) if "class_path" in pc else pc
    split_args["groups"] = [partition_id]
    split_args["names"] = [w.name for w in partition_windows(ctx, partition_id)]
    split_args["skip_targets"] = True
    split_args["output_layer_name_skip_inference_if_exists"] = ctx.output_layer.name
    init["predict_config"] = pc
    trainer = cfg.setdefault("trainer", {})
    trainer.update(
        {
            "strategy": "auto",
            "devices": 1,
            "logger": False,
            "default_root_dir": str(ctx.scratch.logs / "lightning"),
            "enable_progress_bar": False,
        }
    )
    trainer.setdefault("accelerator", "auto")
    trainer["callbacks"] = [
        cb
        for cb in trainer.get("callbacks") or []
        if isinstance(cb, dict) and str(cb.get("class_path", "")).endswith(WRITER_CLASS)
    ]
    for cb in trainer["callbacks"]:
        cb.setdefault("init_args", {})["path"] = ds_path
    return cfg


def lightning_cli(args: list[str], run: bool, step: str, what: str) -> Any:
    """Build rslearn's LightningCLI in this process (``run=False``: parse and instantiate).

    Args:
        args: command-line arguments for the CLI.
        run: whether to run the subcommand in ``args``.
        step: the step name for errors.
        what: a short description for errors.

    Raises:
        StepError: when the CLI exits (argument errors call ``sys.exit``).
    """
    from lightning.pytorch import LightningDataModule, LightningModule
    from rslearn.arg_parser import RslearnArgumentParser
    from rslearn.lightning_cli import RslearnLightningCLI
    from rslearn.utils.jsonargparse import init_jsonargparse

    init_jsonargparse()
    argv = sys.argv
    sys.argv = argv[:1]  # LightningCLI warns when the host process has arguments of its own
    try:
        with trap_exit(step, what=what):
            return RslearnLightningCLI(
                model_class=LightningModule,
                datamodule_class=LightningDataModule,
                args=args,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=None,
                parser_class=RslearnArgumentParser,
                run=run,
            )
    finally:
        sys.argv = argv


def run_lightning(
    subcommand: str, config: dict[str, Any], config_file: Path, ckpt: Path | None
) -> None:
    """Run rslearn's LightningCLI in this process.

    Args:
        subcommand: ``fit`` or ``predict``.
        config: the full config (written to ``config_file``).
        config_file: where to write the config for the CLI to read.
        ckpt: checkpoint to load, or None.

    Raises:
        StepError: when the CLI exits (argument errors call ``sys.exit``) or fails.
    """
    with atomic_path(config_file) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    args = [subcommand, "--config", str(config_file)]
    if ckpt is not None:
        args += ["--ckpt_path", str(ckpt)]
    lightning_cli(args, True, subcommand, f"rslearn/Lightning rejected {config_file.name}")


def check_model_classes(ctx: RunContext) -> None:
    """Import every ``class_path`` in model.yaml, naming the first that does not import."""
    for path, node in class_nodes(ctx.model_config):
        import_class(
            node["class_path"], source=ctx.files.model_yaml, key=f"{key_str(path)}.class_path"
        )


def run_inference(ctx: RunContext, partition_id: str) -> int:
    """Predict every window of a partition, writing the output layer.

    Returns:
        the number of windows with a completed output layer.

    Raises:
        ProjectError: a bad checkpoint or model config.
        StepError: when prediction fails or leaves windows without output.
    """
    check_model_classes(ctx)
    ckpt = ctx.files.checkpoint
    if ckpt is not None and ckpt.stat().st_size == 0:
        raise ProjectError(
            ckpt, "checkpoint file is empty", hint="train the model or remove the file"
        )
    output = ctx.output_layer
    names = [w.name for w in partition_windows(ctx, partition_id)]
    dataset = open_dataset(ctx)
    windows = dataset.load_windows(groups=[partition_id], names=names)
    if len(windows) != len(names):
        raise StepError(
            "inference",
            f"{len(names) - len(windows)} planned windows are not in the dataset "
            "(run build_dataset first)",
            partition_id,
        )
    if all(w.is_layer_completed(output.name) for w in windows):
        logger.info("partition %s: every window already has output; skipping", partition_id)
        return len(windows)
    cfg = predict_config(ctx, partition_id)
    config_file = ctx.scratch.inputs / "predict" / f"{partition_id}.yaml"
    with env_var(DATASET_PATH_VAR, str(ctx.scratch.dataset)), ctx.scratch.tmpdir():
        try:
            run_lightning("predict", cfg, config_file, ckpt)
        except (StepError, ProjectError):
            raise
        except Exception as e:
            raise StepError(
                "inference", f"predict failed: {type(e).__name__}: {e}", partition_id
            ) from e
    missing = [w.name for w in windows if not w.is_layer_completed(output.name)]
    if missing:
        raise StepError(
            "inference",
            f"{len(missing)} of {len(windows)} windows have no {output.name!r} output: "
            f"{missing[:5]}",
            partition_id,
        )
    return len(windows)
