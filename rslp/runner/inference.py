"""Inference step: rslearn's Lightning predict on one partition, in-process."""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rslp.errors import ProjectError, StepError
from rslp.fsutil import atomic_path, sha256_file, signature
from rslp.logs import quiet_libraries
from rslp.plugins import class_nodes, import_class, key_str
from rslp.runner import device
from rslp.runner.context import RunContext, is_writer
from rslp.runner.dataset import open_dataset
from rslp.runner.guard import trap_exit
from rslp.runner.outcomes import rejected_names
from rslp.runner.partition import partition_windows
from rslp.templates import DATASET_PATH, template_env, template_values

logger = logging.getLogger(__name__)
DATASET_PATH_VAR = DATASET_PATH


def predict_config(ctx: RunContext) -> dict[str, Any]:
    """model.yaml adjusted to predict partitions of the scratch dataset.

    - the data module reads the scratch dataset (``${DATASET_PATH}`` is set to it, and a
      missing or different ``path`` is pointed there) and skips windows whose output
      layer is already complete (resume); which partition it reads is set per call
      (:meth:`Predictor.predict`);
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
            "enable_model_summary": False,
        }
    )
    device.apply(cfg, ctx.files.model_yaml, ctx.inference)
    cpu_autocast(cfg, ctx.files.model_yaml, warn=ctx.files.source is None)
    trainer["callbacks"] = [
        cb
        for cb in trainer.get("callbacks") or []
        if isinstance(cb, dict) and is_writer(cb.get("class_path", ""))
    ]
    for cb in trainer["callbacks"]:
        args = cb.setdefault("init_args", {})
        if args.get("path") not in (None, ds_path, f"${{{DATASET_PATH_VAR}}}"):
            logger.warning(
                "model.yaml's RslearnWriter path %r is replaced by the run's dataset %s",
                args.get("path"),
                ds_path,
            )
        args["path"] = ds_path
    return cfg


HALF_DTYPES = frozenset({"bfloat16", "float16", "bf16", "fp16", "half"})
_WARNED: set[tuple[str, str]] = set()


def _on_gpu(trainer: dict[str, Any]) -> bool:
    """Whether the predict trainer will run on a GPU."""
    import torch

    accelerator = str(trainer.get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def cpu_autocast(cfg: dict[str, Any], model_yaml: Path, warn: bool = True) -> list[str]:
    """Turn half-precision autocast off where the model runs on a CPU.

    Encoders such as rslearn's OlmoEarth and Galileo autocast to ``bfloat16`` by default
    (``autocast_dtype``), which fails on a CPU at the first batch. On a CPU such a class
    gets ``autocast_dtype: null`` (what model.yaml would say to run in float32), with one
    warning naming model.yaml and the key (``warn``; a unified project's transpiled
    model.yaml chose bfloat16 for a GPU itself, as the reference does: no warning); on a
    GPU nothing changes.

    Returns:
        the key paths changed.
    """
    import inspect

    from rslp.plugins import ClassPathError, load_class

    if _on_gpu(cfg.get("trainer") or {}):
        return []
    changed = []
    for path, node in class_nodes(cfg):
        args = node.get("init_args")
        value = args.get("autocast_dtype") if isinstance(args, dict) else None
        if not isinstance(args, dict) or "autocast_dtype" not in args:
            try:
                param = inspect.signature(load_class(node["class_path"])).parameters.get(
                    "autocast_dtype"
                )
            except (ClassPathError, TypeError, ValueError):
                continue  # the preflight names a class that does not import
            if param is None or param.default is inspect.Parameter.empty:
                continue
            value = param.default
        if str(value).lower().removeprefix("torch.") not in HALF_DTYPES:
            continue
        node["init_args"] = {**(args if isinstance(args, dict) else {}), "autocast_dtype": None}
        key = f"{key_str(path)}.init_args.autocast_dtype"
        changed.append(key)
        if warn and (str(model_yaml), key) not in _WARNED:
            _WARNED.add((str(model_yaml), key))
            logger.warning(
                "%s: %s is %s, which does not run on a CPU: running without autocast "
                "(float32) here; set it to null to say so",
                model_yaml,
                key,
                value,
            )
    return changed


def run_templates(ctx: RunContext) -> dict[str, str]:
    """The template variables model.yaml may use, with this run's values."""
    return template_values(ctx.files.project_dir, ctx.scratch.dataset, ctx.scratch.root / "trainer")


class Predictor:
    """A model built and loaded once, predicting one partition after another.

    The LightningCLI parse, model build, checkpoint load and Trainer happen once; each
    :meth:`predict` only points the data module's predict split at another partition's
    window group and names (rslearn's data module rebuilds its dataset in ``setup``).
    Use :func:`predictor_for` to get the one cached for a run's inputs in this process.

    Args:
        ctx: the run's inputs (model.yaml, checkpoint, scratch dataset).
    """

    def __init__(self, ctx: RunContext) -> None:
        t0 = time.perf_counter()
        config_file = ctx.scratch.inputs / "predict" / "predict.yaml"
        cfg = predict_config(ctx)
        with atomic_path(config_file) as tmp:
            tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.batch_size = device.batch_size(cfg)
        self.batch_size_given = ctx.inference.batch_size is not None
        self.templates = run_templates(ctx)
        with template_env(self.templates):
            cli = lightning_cli(
                ["--config", str(config_file)],
                False,
                "inference",
                f"rslearn/Lightning rejected {ctx.files.model_yaml.name}",
            )
        self.model, self.datamodule, self.trainer = cli.model, cli.datamodule, cli.trainer
        from rslp.runner.window_counter import WindowCounter

        self.counter = WindowCounter()
        self.trainer.callbacks.append(self.counter)
        self.base_split = self.datamodule.split_configs["predict"]
        self.checkpoint = ctx.files.checkpoint
        self.model_yaml = ctx.files.model_yaml
        self.loaded = self.checkpoint is None
        self.dataset_path = str(ctx.scratch.dataset)
        logger.info("model built and ready in %.2f s", time.perf_counter() - t0)

    def _explain_checkpoint(self) -> None:
        """After a failed load: raise a ProjectError when the checkpoint does not fit.

        Raises:
            ProjectError: naming the checkpoint, model.yaml, the first mismatching
                parameter and both shapes.
        """
        from rslp.checkpoint import load_state_dict, mismatch

        assert self.checkpoint is not None
        weights, err = load_state_dict(self.checkpoint)
        problem = err or mismatch(self.model.state_dict(), weights)
        if problem:
            raise ProjectError(
                self.checkpoint,
                f"does not fit {self.model_yaml}: {problem}",
                hint="use the checkpoint trained with this model.yaml, or fix the architecture",
            ) from None

    def predict(
        self, partition_id: str, names: list[str], on_windows: Callable[[float], None] | None
    ) -> float:
        """Predict the named windows of a partition's group.

        Args:
            partition_id: the window group.
            names: the planned window names.
            on_windows: called with the windows (a fraction for crops) each batch finished.

        Returns:
            the set-up time of this call in seconds (start until the predict loop runs).
        """
        t0 = time.perf_counter()
        split = copy.copy(self.base_split)
        split.groups = [partition_id]
        split.names = names
        self.datamodule.split_configs["predict"] = split
        self.counter.on_windows, self.counter.predict_started = on_windows, None
        ckpt = None if self.loaded else str(self.checkpoint)
        with template_env(self.templates):
            try:
                self.trainer.predict(
                    self.model, datamodule=self.datamodule, return_predictions=False, ckpt_path=ckpt
                )
            except Exception as e:
                if device.is_out_of_memory(e):
                    raise device.out_of_memory(
                        self.model_yaml, self.batch_size, self.batch_size_given
                    ) from None
                if ckpt is not None:
                    self._explain_checkpoint()
                raise
        self.loaded = True
        started = self.counter.predict_started or time.perf_counter()
        self.counter.on_windows = None
        return started - t0


_CACHE: dict[tuple[str, ...], Predictor] = {}


def _predictor_key(ctx: RunContext) -> tuple[str, ...]:
    ckpt = ctx.files.checkpoint
    ck = ":".join(map(str, [ckpt, *signature(ckpt)])) if ckpt else "-"
    return (
        sha256_file(ctx.files.model_yaml),
        sha256_file(ctx.files.dataset_json),
        ck,
        str(ctx.scratch.dataset),
        # A reused Ray worker process may be handed another GPU than its model was built on.
        os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        repr(ctx.inference),
    )


def predictor_for(ctx: RunContext) -> tuple[Predictor, bool]:
    """This process's predictor for the run's inputs, built on first use.

    One predictor is kept (a model per process, not one per config seen): a different
    model.yaml, dataset.json, checkpoint or scratch replaces it.

    Returns:
        (the predictor, whether it was built by this call).
    """
    key = _predictor_key(ctx)
    if key in _CACHE:
        return _CACHE[key], False
    _CACHE.clear()
    _CACHE[key] = Predictor(ctx)
    return _CACHE[key], True


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
    quiet_libraries()  # rslearn's modules add console handlers as they are imported
    argv = sys.argv
    sys.argv = argv[:1]  # LightningCLI warns when the host process has arguments of its own
    try:
        with trap_exit(step, what=what):
            cli = RslearnLightningCLI(
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
        quiet_libraries()  # the model's modules were just imported
    return cli


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


def run_inference(
    ctx: RunContext, partition_id: str, on_windows: Callable[[float], None] | None = None
) -> dict[str, Any]:
    """Predict every window of a partition, writing the output layer.

    The model is built once per process and reused (:func:`predictor_for`).

    Args:
        ctx: the run's inputs.
        partition_id: the partition.
        on_windows: called with a count of windows as the writer finishes them.

    Returns:
        ``{"windows": ready windows with a completed output layer (rejected ones are
        skipped), "setup_s": set-up seconds of
        this call, "model_built": whether this call built the model}``.

    Raises:
        ProjectError: a bad checkpoint or model config.
        StepError: when prediction fails or leaves windows without output.
    """
    t0 = time.perf_counter()
    check_model_classes(ctx)
    ckpt = ctx.files.checkpoint
    if ckpt is not None and ckpt.stat().st_size == 0:
        raise ProjectError(
            ckpt, "checkpoint file is empty", hint="train the model or remove the file"
        )
    output = ctx.output_layer
    rejected = rejected_names(ctx.scratch, partition_id)
    names = [w.name for w in partition_windows(ctx, partition_id) if w.name not in rejected]
    if not names:
        logger.info("partition %s: every window was rejected; nothing to predict", partition_id)
        return {"windows": 0, "setup_s": 0.0, "model_built": False}
    dataset = open_dataset(ctx)
    windows = dataset.load_windows(groups=[partition_id], names=names)
    if len(windows) != len(names):
        raise StepError(
            "inference",
            f"{len(names) - len(windows)} planned windows are not in the dataset "
            "(run build_dataset first)",
            partition_id,
        )
    todo = [w for w in windows if not w.is_layer_completed(output.name)]
    if not todo:
        logger.info("partition %s: every window already has output; skipping", partition_id)
        return {"windows": len(windows), "setup_s": 0.0, "model_built": False}
    if on_windows is not None and len(todo) < len(windows):
        on_windows(len(windows) - len(todo))
    with ctx.scratch.tmpdir():
        try:
            predictor, built = predictor_for(ctx)
            setup_s = time.perf_counter() - t0 + predictor.predict(partition_id, names, on_windows)
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
    return {"windows": len(windows), "setup_s": round(setup_s, 4), "model_built": built}
