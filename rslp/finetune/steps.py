"""The fine-tune steps; each reads and writes only ``SCRATCH/finetune/`` (so each runs alone).

- :func:`prepare_windows`: annotations -> sampled tasks -> labeled windows -> splits; writes
  the training dataset's windows with their label layer, and ``windows.json``.
- :func:`build_dataset`: materializes the windows' input layers (rslearn, errors raised).
- :func:`fit`: rslearn's model fit in this process, from the project's checkpoint, seeded
  and deterministic on CPU; Lightning's ``last.ckpt`` after every epoch, so a rerun after a
  kill resumes there; the best epoch by the validation metric becomes ``checkpoint.ckpt``.
- :func:`evaluate`: the model before and after on the validation windows: ``metrics.json``
  and ``report.png``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from rslp.errors import ProjectError, StepError
from rslp.finetune.annotations import label_of, load_tasks
from rslp.finetune.context import FinetuneContext
from rslp.finetune.preparers import LabeledWindow
from rslp.finetune.splitters import SPLITS
from rslp.fsutil import atomic_path, sha256_file, write_json_atomic
from rslp.nested import dig
from rslp.runner.outcomes import Rejection, rejection_properties

logger = logging.getLogger(__name__)

WINDOWS_JSON = "windows.json"
REJECTED = "rejected"  # the split of a labeled window without imagery: no split reads it
REJECTED_GEOJSON = "rejected_windows.geojson"
FIT_JSON = "fit.json"
METRICS_JSON = "metrics.json"
REPORT_PNG = "report.png"
CHECKPOINT = "checkpoint.ckpt"
TRAINER_DIR = "trainer"
LOGS_DIR = "logs"


def classes(ctx: FinetuneContext) -> list[str]:
    """The class names: the label layer's, else the model task's (num_classes or classes)."""
    names = ctx.label_layer.get("class_names")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    task = _task(ctx.model_config)
    args: dict[str, Any] = (
        task.get("init_args") or {} if isinstance(task.get("init_args"), dict) else {}
    )
    if isinstance(args.get("classes"), list):
        return [str(c) for c in args["classes"]]
    if isinstance(args.get("class_names"), list):
        return [str(c) for c in args["class_names"]]
    n = args.get("num_classes")
    if isinstance(n, int) and n > 0:
        return [f"class_{i}" for i in range(n)]
    raise ProjectError(
        ctx.files.dataset_json,
        f"cannot tell the classes: label layer {ctx.config.label_layer!r} has no class_names "
        "and the model's task names none",
        f"layers.{ctx.config.label_layer}.class_names",
    )


def _task(model_config: dict[str, Any]) -> dict[str, Any]:
    """The task of model.yaml (the first sub-task of a MultiTask); {} when there is none."""
    task = dig(model_config, "data", "init_args", "task")
    if isinstance(task, dict) and str(task.get("class_path", "")).endswith("MultiTask"):
        subs = dig(task, "init_args", "tasks")
        task = next(iter(subs.values()), {}) if isinstance(subs, dict) and subs else {}
    return task if isinstance(task, dict) else {}


def class_index(value: Any, names: list[str]) -> int | None:
    """A label value as a class index (a whole number below len(names), or a class name)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer() and 0 <= value < len(names):
        return int(value)
    if isinstance(value, str):
        if value in names:
            return names.index(value)
        if value.isdigit() and int(value) < len(names):
            return int(value)
    return None


def _labeled_windows(ctx: FinetuneContext) -> list[LabeledWindow]:
    tasks = ctx.sampler.sample(load_tasks(ctx.files.tasks, ctx.files.annotations))
    names = classes(ctx)
    source = ctx.files.annotations

    def label(annotation: Any) -> Any:
        value = label_of(annotation, ctx.config.label_property, source)
        if class_index(value, names) is None:
            raise ProjectError(
                source,
                f"label {value!r} is not a class of the model (classes: {names})",
                f"features[{annotation.index}].properties.oe_labels",
            )
        if ctx.preparer.LABELS == "raster":
            return class_index(value, names)
        return names[class_index(value, names) or 0]

    out: list[LabeledWindow] = []
    for task in tasks:
        try:
            out += ctx.preparer.prepare(task, label)
        except ValueError as e:
            raise ProjectError(ctx.files.annotations, str(e)) from None
    seen: set[str] = set()
    for w in out:
        if w.name in seen:
            raise ProjectError(ctx.files.annotations, f"two labeled windows are named {w.name}")
        seen.add(w.name)
    return out


def plan_windows(
    ctx: FinetuneContext,
) -> tuple[list[LabeledWindow], dict[str, str], Counter[str]]:
    """The labeled windows, each one's split, and the windows per split (nothing written).

    Raises:
        ProjectError: a bad annotation, a label that is not a class, or an empty train or
            val split, naming the file and key to change.
    """
    ltype = ctx.label_layer.get("type")
    if ltype != ctx.preparer.LABELS:
        raise ProjectError(
            ctx.files.finetune_yaml,
            f"{type(ctx.preparer).__name__} makes {ctx.preparer.LABELS} labels, but label_layer "
            f"{ctx.config.label_layer!r} is a {ltype} layer",
            ctx.files.key("labeled_window_preparer.class_path"),
        )
    windows = _labeled_windows(ctx)
    if not windows:
        raise ProjectError(ctx.files.annotations, "the annotations make no labeled window")
    splits = {w.name: ctx.splitter.split(w) for w in windows}
    counts = Counter(splits.values())
    for needed in ("train", "val"):
        if not counts[needed]:
            raise ProjectError(
                ctx.files.finetune_yaml,
                f"the {needed} split is empty: the {len(windows)} labeled window(s) went to "
                f"{dict(counts)}",
                ctx.files.key("data_splitter.init_args"),
                hint="more annotations, other proportions, or a smaller grid_size",
            )
    return windows, splits, counts


def prepare_windows(ctx: FinetuneContext) -> dict[str, Any]:
    """Make the training dataset's windows and labels; returns the summary (``windows.json``).

    Raises:
        ProjectError: a bad annotation, a label that is not a class, or a split that ends
            up empty (train or val), naming the file and key to change.
    """
    from rasterio.crs import CRS
    from rslearn.dataset import Window
    from rslearn.utils.geometry import Projection

    from rslp.runner.dataset import open_dataset_at, write_config

    (ctx.scratch.root / WINDOWS_JSON).unlink(missing_ok=True)  # no stale summary on a crash
    windows, splits, counts = plan_windows(ctx)
    cfg = ctx.config
    layer = ctx.label_layer
    group_dir = ctx.scratch.dataset / "windows" / cfg.group_name
    if group_dir.exists():
        shutil.rmtree(group_dir)  # windows are remade from the annotations each time
    write_config(ctx.dataset_config, ctx.files.dataset_json, ctx.scratch)
    dataset = open_dataset_at(ctx.scratch, ctx.files.dataset_json)
    names = classes(ctx)
    labels: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    for w in windows:
        Window(
            storage=dataset.storage,
            group=cfg.group_name,
            name=w.name,
            projection=Projection(CRS.from_string(w.crs), w.resolution, -w.resolution),
            bounds=w.bounds,
            time_range=w.time_range,
            options={cfg.split_property: splits[w.name], "task_id": w.task_id},
        ).save()
    saved = {x.name: x for x in dataset.load_windows(groups=[cfg.group_name])}
    for w in windows:
        split = splits[w.name]
        _write_labels(saved[w.name], w, cfg.label_layer, layer, _task(ctx.model_config))
        for v in w.values:
            labels[split][names[class_index(v, names) or 0]] += 1
    summary = {
        "windows": len(windows),
        "splits": {s: counts.get(s, 0) for s in SPLITS},
        "labels": {s: dict(sorted(c.items())) for s, c in labels.items()},
        "classes": names,
        "group": cfg.group_name,
        "digest": _digest(windows, splits),
    }
    write_json_atomic(ctx.scratch.root / WINDOWS_JSON, summary)
    return summary


def _digest(windows: list[LabeledWindow], splits: dict[str, str]) -> str:
    h = hashlib.sha256()
    for w in windows:
        h.update(f"{w.name}|{w.crs}|{w.bounds}|{splits[w.name]}|{w.values}".encode())
        if w.raster is not None:
            h.update(w.raster.tobytes())
    return h.hexdigest()[:16]


def vector_label(task: dict[str, Any]) -> tuple[str, bool, list[str]]:
    """Where the model's task reads a vector label: (property, as a class id?, classes)."""
    args: dict[str, Any] = (
        task.get("init_args") or {} if isinstance(task.get("init_args"), dict) else {}
    )
    prop = args.get("property_name")
    classes = args.get("classes")
    return (
        prop if isinstance(prop, str) else "label",
        bool(args.get("read_class_id", False)),
        [str(c) for c in classes] if isinstance(classes, list) else [],
    )


def _write_labels(
    window: Any, w: LabeledWindow, layer_name: str, layer: dict[str, Any], task: dict[str, Any]
) -> None:
    from rslearn.config import LayerConfig
    from rslearn.utils.raster_array import RasterArray

    cfg = LayerConfig.model_validate(layer)
    with window.data.open_layer_writer(layer_name) as writer:
        if w.raster is not None:
            bs = cfg.band_sets[0]
            writer.write_raster(
                bs.bands,
                bs.instantiate_raster_format(),
                window.projection,
                window.bounds,
                RasterArray(chw_array=w.raster[None].astype(bs.dtype.get_numpy_dtype())),
            )
        else:
            from rslearn.utils.feature import Feature
            from rslearn.utils.geometry import WGS84_PROJECTION, STGeometry
            from shapely.geometry import Point

            prop, by_id, names = vector_label(task)
            feats = [
                Feature(
                    STGeometry(WGS84_PROJECTION, Point(lon, lat), None),
                    {prop: class_index(value, names) if by_id else value},
                )
                for lon, lat, value in w.points
            ]
            writer.write_vector(cfg.instantiate_vector_format(), feats)
    window.mark_layer_completed(layer_name)


def _summary(ctx: FinetuneContext) -> dict[str, Any]:
    path = ctx.scratch.root / WINDOWS_JSON
    if not path.is_file():
        raise StepError("finetune", "no labeled windows: run prepare_windows first")
    return dict(json.loads(path.read_text()))


def _windows(ctx: FinetuneContext) -> tuple[Any, list[Any]]:
    from rslp.runner.dataset import open_dataset_at

    group = _summary(ctx)["group"]
    dataset = open_dataset_at(ctx.scratch, ctx.files.dataset_json)
    return dataset, dataset.load_windows(groups=[group])


def build_dataset(ctx: FinetuneContext) -> int:
    """Materialize the labeled windows' input layers; returns how many windows are ready.

    A labeled window without imagery is *rejected* as in a prediction run: its split
    becomes ``rejected`` (no split reads it), it is listed in
    ``rejected_windows.geojson`` and counted in ``windows.json`` (``rejected`` per split).

    Raises:
        StepError: a data source failed with an error that is not transient; ready /
            labeled windows is below the config's ``min_window_success_rate``; or no
            train or val window is left.
    """
    from rslp.runner.dataset import materialize, materialize_error
    from rslp.runner.retry import RetryPolicy

    dataset, windows = _windows(ctx)
    problems, failure = materialize(dataset, windows, ctx.scratch, "finetune", None, RetryPolicy())
    split_key = ctx.config.split_property
    rejected: dict[str, Rejection] = {}
    for (layer, why), bad in problems.items():
        for w in bad:
            task = str((w.options or {}).get("task_id", ""))
            rejected[w.name] = Rejection(w.name, layer, why, failure or "", [task])
            if (w.options or {}).get(split_key) != REJECTED:
                w.options = {**(w.options or {}), split_key: REJECTED, "was": w.options[split_key]}
                w.save()
    summary = _summary(ctx)
    dropped = Counter(str((w.options or {}).get("was")) for w in windows if w.name in rejected)
    summary["rejected"] = {s: dropped.get(s, 0) for s in SPLITS}
    write_json_atomic(ctx.scratch.root / WINDOWS_JSON, summary)
    listing = ctx.scratch.root / REJECTED_GEOJSON
    _write_rejected(listing, windows, rejected)
    if not windows:
        return 0
    ready = len(windows) - len(rejected)
    floor = ctx.config.min_window_success_rate
    where = f"{ctx.files.finetune_yaml}: {ctx.files.key('min_window_success_rate')}"
    if ready < floor * len(windows) - 1e-9:
        err = materialize_error(ctx, None, problems)
        tasks = sorted({t for r in rejected.values() for t in r.feature_ids})
        raise StepError(
            "finetune",
            f"{ready} of {len(windows)} labeled windows have imagery "
            f"({ready / len(windows):.1%}), below min_window_success_rate {floor:g} ({where}); "
            f"{err.detail}; the rejected windows are listed in {listing}",
            None,
            tuple(f"task {t}" for t in tasks),
        )
    left = {s: summary["splits"][s] - summary["rejected"][s] for s in ("train", "val")}
    empty = [s for s, n in left.items() if n <= 0]
    if empty:
        raise StepError(
            "finetune",
            f"no {' or '.join(empty)} window has imagery (the rejected windows are listed in "
            f"{listing})",
        )
    return ready


def _write_rejected(path: Path, windows: list[Any], rejected: dict[str, Rejection]) -> None:
    """``rejected_windows.geojson`` of a fine-tune: each rejected window, its task and why."""
    from rslp.common.partitioners.interface import WindowSpec
    from rslp.runner.preview import write_windows_geojson

    if not rejected:
        path.unlink(missing_ok=True)
        return
    specs = [
        (
            str((w.options or {}).get("was", "")),
            WindowSpec(
                w.name,
                str(w.projection.crs),
                float(w.projection.x_resolution),
                tuple(w.bounds),
                w.time_range,
                rejected[w.name].feature_ids,
            ),
        )
        for w in windows
        if w.name in rejected
    ]
    write_windows_geojson(
        path, iter(specs), lambda _split, spec: rejection_properties(rejected[spec.name])
    )


def monitor(model_config: dict[str, Any]) -> tuple[str, str]:
    """The validation metric that picks the best epoch, and its mode."""
    task = _task(model_config)
    name = str(task.get("class_path", "")).rsplit(".", 1)[-1]
    args: dict[str, Any] = task["init_args"] if isinstance(task.get("init_args"), dict) else {}
    top = str(dig(model_config, "data", "init_args", "task", "class_path") or "")
    if (
        name in ("SegmentationTask", "ClassificationTask")
        and args.get("enable_accuracy_metric", True)
        and not top.endswith("MultiTask")
    ):
        return "val_accuracy", "max"
    return "val_loss", "min"


def fit_config(ctx: FinetuneContext, version: str) -> dict[str, Any]:
    """model.yaml adjusted to train on the labeled windows.

    The data module reads the fine-tune dataset: ``train``/``val``/``test`` configs select
    the group and the split (``tags``); data loaders run in this process; batch size,
    learning rate and epochs follow ``trainer`` in the fine-tune config (``--max-epochs``
    wins). The trainer keeps one device, deterministic algorithms, a CSV log, and only
    this runner's checkpointing (model.yaml's callbacks and loggers are left out).
    """
    cfg = copy.deepcopy(ctx.model_config)
    ft = ctx.config
    over = ft.trainer
    data = cfg.setdefault("data", {}).setdefault("init_args", {})
    data["path"] = str(ctx.scratch.dataset)
    data["num_workers"] = 0
    if over.batch_size is not None:
        data["batch_size"] = over.batch_size
    for split in SPLITS:
        key = f"{split}_config"
        c = data.get(key) or {}
        args = c.setdefault("init_args", {}) if "class_path" in c else c
        args["groups"] = [ft.group_name]
        args["tags"] = {ft.split_property: split}
        data[key] = c
    if over.learning_rate is not None:
        opt = ((cfg.get("model") or {}).get("init_args") or {}).get("optimizer")
        if not isinstance(opt, dict):
            raise ProjectError(
                ctx.files.finetune_yaml,
                "trainer.learning_rate needs model.init_args.optimizer in model.yaml",
                ctx.files.key("trainer.learning_rate"),
            )
        opt.setdefault("init_args", {})["lr"] = over.learning_rate
    metric, mode = monitor(ctx.model_config)
    trainer = cfg.setdefault("trainer", {})
    epochs = ctx.max_epochs or over.max_epochs or trainer.get("max_epochs") or 10
    trainer.update(
        {
            "max_epochs": int(epochs),
            "devices": 1,
            "strategy": "auto",
            "deterministic": True,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "default_root_dir": str(ctx.scratch.root / TRAINER_DIR),
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {
                    "save_dir": str(ctx.scratch.root / LOGS_DIR),
                    "name": "",
                    "version": version,
                },
            },
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(ctx.scratch.root / TRAINER_DIR),
                        "filename": "best",
                        "monitor": metric,
                        "mode": mode,
                        "save_top_k": 1,
                        "save_last": True,
                    },
                }
            ],
        }
    )
    trainer.setdefault("accelerator", "auto")
    for k in ("max_steps", "overfit_batches", "limit_train_batches", "limit_val_batches"):
        trainer.pop(k, None)
    cfg["seed_everything"] = over.seed
    cfg.pop("ckpt_path", None)
    return cfg


def fit_inputs(ctx: FinetuneContext, epochs: bool = True) -> str:
    """What a fit depends on: the model, data and fine-tune configs, base weights, labels.

    With ``epochs``, also the number of epochs: the key under which a fit resumes (a
    changed one starts afresh). Without, what its results stay valid for (evaluate and
    export refuse results of other inputs).
    """
    import yaml

    h = hashlib.sha256()
    for p in (ctx.files.model_yaml, ctx.files.dataset_json, ctx.files.checkpoint):
        h.update((sha256_file(p) if p is not None else "-").encode())
    h.update(yaml.safe_dump(ctx.config.model_dump(mode="json"), sort_keys=True).encode())
    h.update(str(_summary(ctx)["digest"]).encode())
    if epochs:
        h.update(str(fit_config(ctx, "key")["trainer"]["max_epochs"]).encode())
    return h.hexdigest()[:16]


def check_current(ctx: FinetuneContext, recorded: str | None, what: str) -> None:
    """Refuse results made from other inputs than the current ones.

    Raises:
        StepError: naming what to run again.
    """
    if recorded != fit_inputs(ctx, epochs=False):
        raise StepError(
            "finetune",
            f"{what} is out of date: the labels, configs or base checkpoint changed since "
            "the fit; run fit (and evaluate) again",
        )


def build_model(ctx: FinetuneContext, version: str, what: str) -> Any:
    """The fit config's LightningCLI (model, data module, trainer), nothing run."""
    import yaml

    from rslp.runner.inference import lightning_cli
    from rslp.templates import template_env, template_values

    cfg_file = ctx.scratch.root / "fit.yaml"
    with atomic_path(cfg_file) as tmp:
        tmp.write_text(yaml.safe_dump(fit_config(ctx, version), sort_keys=False))
    values = template_values(
        ctx.files.project_dir, ctx.scratch.dataset, ctx.scratch.root / TRAINER_DIR
    )
    with template_env(values):
        return lightning_cli(
            ["--config", str(cfg_file)], False, "finetune", f"{what}: rslearn rejected model.yaml"
        )


def load_weights(model: Any, checkpoint: Path) -> None:
    """Load a checkpoint's ``state_dict`` into ``model``.

    Raises:
        ProjectError: when it does not fit the model (naming the first mismatch).
    """
    from rslp.checkpoint import load_state_dict, mismatch

    weights, err = load_state_dict(checkpoint)
    problem = err or mismatch(model.state_dict(), weights)
    if problem or weights is None:
        raise ProjectError(checkpoint, f"does not fit model.yaml: {problem}")
    model.load_state_dict(weights)


def fit(ctx: FinetuneContext) -> Path:
    """Fine-tune; returns ``checkpoint.ckpt`` (the best epoch by the validation metric).

    A rerun with the same inputs resumes from Lightning's ``last.ckpt`` (after a kill -9,
    from the last finished epoch); changed inputs start afresh.
    """
    import torch

    root = ctx.scratch.root
    trainer_dir = root / TRAINER_DIR
    inputs = fit_inputs(ctx)
    state_file = root / FIT_JSON
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    last = trainer_dir / "last.ckpt"
    resume = state.get("inputs") == inputs and last.is_file()
    if not resume:
        shutil.rmtree(trainer_dir, ignore_errors=True)
        shutil.rmtree(root / LOGS_DIR, ignore_errors=True)
        state = {"inputs": inputs, "data": fit_inputs(ctx, epochs=False), "attempts": 0}
    state["attempts"] = int(state.get("attempts", 0)) + 1
    write_json_atomic(state_file, state)
    with ctx.scratch.tmpdir():
        cli = build_model(ctx, f"fit{state['attempts']:03d}", "fit")
        if not resume and ctx.files.checkpoint is not None:
            load_weights(cli.model, ctx.files.checkpoint)
        logger.info("fine-tune: %s", "resuming from last.ckpt" if resume else "starting")
        try:
            cli.trainer.fit(
                cli.model, datamodule=cli.datamodule, ckpt_path=last if resume else None
            )
        except (ProjectError, StepError):
            raise
        except Exception as e:  # Lightning or the model failing mid-fit
            raise StepError("finetune", f"fit failed: {type(e).__name__}: {e}") from e
        best = Path(cli.trainer.checkpoint_callback.best_model_path or last)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    keep = ("state_dict", "epoch", "global_step", "pytorch-lightning_version")
    slim = {k: ckpt[k] for k in keep if k in ckpt}
    slim["hyper_parameters"] = {}
    out = root / CHECKPOINT
    with atomic_path(out) as tmp:
        torch.save(slim, tmp)
    state.update(done=True, best_epoch=int(ckpt.get("epoch", -1)), best=str(best.name))
    write_json_atomic(state_file, state)
    return out


def _predicted(output: Any, target: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(true classes, predicted classes) of one sample's valid labels.

    Segmentation targets hold ``classes`` and ``valid`` rasters (the output: class scores
    per pixel); classification targets a ``class`` and ``valid`` (the output: scores).
    A MultiTask's first sub-task is scored.
    """
    if isinstance(target, dict) and not ({"classes", "class"} & set(target)) and target:
        key = next(iter(target))
        return _predicted(output[key] if isinstance(output, dict) else output, target[key])
    if isinstance(output, dict):
        output = next(iter(output.values()))
    scores = _np(output)
    if "classes" in target:
        truth = _np(target["classes"])
        valid = _np(target["valid"]) > 0
        pred = scores.argmax(axis=0)
        truth, valid = truth.reshape(pred.shape), valid.reshape(pred.shape)
        return truth[valid], pred[valid]
    truth = _np(target["class"]).reshape(-1)
    valid = _np(target["valid"]).reshape(-1) > 0
    pred = np.asarray(scores.argmax(axis=-1)).reshape(-1)
    return truth[valid], pred[valid]


def _np(x: Any) -> np.ndarray:
    """A tensor (or rslearn RasterImage, CTHW) as a numpy array without its unit axes."""
    x = getattr(x, "image", x)
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[1] == 1:  # C, T=1, ... after the loop: (C, 1, H, W) cases
        arr = arr[:, 0]
    return arr


def confusions_on_val(
    ctx: FinetuneContext, checkpoints: list[Path], names: list[str]
) -> list[np.ndarray]:
    """The confusion matrix of each checkpoint's weights on the validation windows.

    The model and the validation data are built once; each checkpoint is loaded in turn.
    """
    import torch
    from rslearn.train.model_context import ModelContext

    from rslp.finetune.metrics import confusion

    out_matrices = []
    with ctx.scratch.tmpdir():
        cli = build_model(ctx, "eval", "evaluate")
        dm = cli.datamodule
        dm.setup("validate")
        for checkpoint in checkpoints:
            load_weights(cli.model, checkpoint)
            model = cli.model.eval()
            cm = np.zeros((len(names), len(names)), dtype=np.int64)
            with torch.no_grad():
                for inputs, targets, metadatas in dm.val_dataloader():
                    out = model(ModelContext(inputs=inputs, metadatas=metadatas), targets).outputs
                    for o, t in zip(out, targets, strict=True):
                        truth, pred = _predicted(o, t)
                        cm += confusion(truth, pred, len(names))
            out_matrices.append(cm)
    return out_matrices


def evaluate(ctx: FinetuneContext) -> dict[str, Any]:
    """Score the model before and after on the validation windows; write metrics and report.

    Returns:
        the ``metrics.json`` content: ``before``, ``after`` and ``splits``.

    Raises:
        StepError: when there is no fine-tuned checkpoint (run fit first).
    """
    from rslp.finetune.metrics import scores
    from rslp.finetune.report import write_report

    summary = _summary(ctx)
    tuned = ctx.scratch.root / CHECKPOINT
    if not tuned.is_file():
        raise StepError("finetune", "no fine-tuned checkpoint: run fit first")
    state_file = ctx.scratch.root / FIT_JSON
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    check_current(ctx, state.get("data") if state.get("done") else None, "checkpoint.ckpt")
    names = list(summary["classes"])
    base = ctx.files.checkpoint
    matrices = confusions_on_val(ctx, [tuned] if base is None else [tuned, base], names)
    after = scores(matrices[0], names)
    empty = np.zeros((len(names), len(names)), dtype=np.int64)
    before = scores(matrices[1] if base is not None else empty, names)
    metrics = {
        "before": before,
        "after": after,
        "splits": {
            "windows": summary["splits"],
            "labels": summary["labels"],
            "rejected": summary.get("rejected", {}),
        },
        "base_checkpoint": (
            None
            if ctx.files.checkpoint is None
            else {"path": ctx.files.checkpoint.name, "sha256": sha256_file(ctx.files.checkpoint)}
        ),
        "checkpoint_sha256": sha256_file(tuned),
        "best_epoch": state.get("best_epoch"),
        "monitor": monitor(ctx.model_config)[0],
        "fit_inputs": state.get("data"),
    }
    write_json_atomic(ctx.scratch.root / METRICS_JSON, metrics)
    write_report(ctx.scratch.root / REPORT_PNG, before, after, ctx.scratch.root / LOGS_DIR)
    return metrics
