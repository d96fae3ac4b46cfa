"""``olmoearth_config.yaml`` -> the dataset config, model config, legend and run config.

What the reference runner makes of a unified file at run time, written out with rslearn
0.1.19's classes (docs/formats.md lists where they differ from the reference's):

- **dataset config**: one layer per modality and observation window, in the order
  modalities (Sentinel-2, Sentinel-1), lookbehind before lookahead, the file's list order
  (``sentinel2_l2a_lookbehind_0``, ``..._1``; ``sentinel2_l2a_lookbehind`` for the single
  form, ``sentinel2_l2a`` for ``period``/``point_in_time``); then ``labels`` (a band set
  per field) and ``output`` (one band set, a band per field in field order).
- **model config**: rslearn's ``RslearnLightningModule`` over a ``MultiTaskModel`` (the
  OlmoEarth encoder, a decoder per task), a ``MultiTask``, each modality's layers expanded
  to their item groups (``layer``, ``layer.1`` ...), ``OlmoEarthNormalize`` first, and
  :class:`rslp.common.writers.MultiFieldWriter` writing every head into ``output``.
- **legend** (``inference_results_config``): a classification field per segmentation
  field and a regression field per regression field, ``band_index`` = 1-based position.
- **run config**: the strategies of ``prediction_requests`` as an ``olmoearth_run.yaml``.

Every function here is pure: same file, same output.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rslp.formats.unified.schema import (
    ClassesField,
    CombineGeotiffStep,
    CrsProjection,
    FramedPointInTime,
    GridPartitioner,
    HuggingfaceSource,
    ManualTask,
    ModelPathSource,
    Observation,
    Partitioner,
    Period,
    PointInTime,
    RegistrySource,
    RegressionField,
    RepeatingInterval,
    SegmentationTask,
    UnifiedConfig,
    UseUtm,
)
from rslp.templates import EXTRA_FILES_DIR, expand

DAY = 86400.0
OUTPUT_LAYER = "output"
LABELS_LAYER = "labels"
DEFAULT_BATCH_SIZE = 32  # the reference's deployment default (PREDICTION_BATCH_SIZE)
WRITER_CLASS = "rslp.common.writers.MultiFieldWriter"
NUMPY_FORMAT = {"class_path": "rslearn.utils.raster_format.NumpyRasterFormat"}
GEOTIFF_FORMAT = {"class_path": "rslearn.utils.raster_format.GeotiffRasterFormat"}
PC = "rslearn.data_sources.planetary_computer"
PER_LAYER_STORAGE = "rslearn.dataset.window_data_storage.per_layer.PerLayerStorageFactory"
S2_BANDS = ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "B01", "B09"]
S1_BANDS = ["vv", "vh"]
# modality key in the file -> (layer/input name, bands, stored dtype)
MODALITY_LAYERS = {
    "sentinel2_l2a": ("sentinel2_l2a", S2_BANDS, "uint16"),
    "sentinel1_rtc": ("sentinel1", S1_BANDS, "float32"),
}
# rslearn's EMBEDDING_SIZES, so that transpiling imports no torch.
EMBEDDING_SIZES = {
    "OLMOEARTH_V1_NANO": 128,
    "OLMOEARTH_V1_TINY": 192,
    "OLMOEARTH_V1_BASE": 768,
    "OLMOEARTH_V1_LARGE": 1024,
    "OLMOEARTH_V1_1_NANO": 128,
    "OLMOEARTH_V1_1_TINY": 192,
    "OLMOEARTH_V1_1_BASE": 768,
    "OLMOEARTH_V1_2_NANO": 128,
    "OLMOEARTH_V1_2_TINY": 192,
    "OLMOEARTH_V1_2_SMALL": 384,
    "OLMOEARTH_V1_2_BASE": 768,
}
WEIGHT_FILES = ("weights.pth", "model.safetensors", "model.pt")
EXTRA_FILES_VAR = "${EXTRA_FILES_PATH}"
PARTITIONERS = "rslp.common.partitioners"
POSTPROCESSORS = "rslp.common.postprocessing"


@dataclass(frozen=True)
class Transpiled:
    """What a run uses in place of hand-written files.

    Attributes:
        dataset: the rslearn dataset config (``dataset.json``).
        model: the rslearn/Lightning model config (``model.yaml``).
        results: the legend (``inference_results_config``).
        run: an ``olmoearth_run.yaml``: the strategies and the legend.
    """

    dataset: dict[str, Any]
    model: dict[str, Any]
    results: dict[str, Any]
    run: dict[str, Any]


def _seconds(s: float) -> str:
    return f"{s:.1f}s"


def observation_days(obs: Observation) -> tuple[float, int, float | None]:
    """(days searched, item groups, days per period or None) of one observation."""
    if isinstance(obs, RepeatingInterval):
        periods = obs.num_periods + obs.recovery_periods
        return float(periods * obs.period_duration_days), obs.num_periods, obs.period_duration_days
    return float(obs.duration_days), obs.num_samples, None


@dataclass(frozen=True)
class Window:
    """One modality layer: its name, item groups and time frame relative to the request."""

    layer: str
    modality: str
    groups: int
    duration_s: float
    offset_s: float | None
    space_mode: str
    period_s: float | None


def _observed(
    layer: str, modality: str, obs: Observation, offset: float | None, mosaic: bool
) -> Window:
    """The layer of one observation: its groups, frame and query, ``offset`` in days."""
    days, groups, period = observation_days(obs)
    return Window(
        layer,
        modality,
        groups,
        days * DAY,
        None if offset is None else offset * DAY,
        "MOSAIC" if mosaic else "CONTAINS",
        period * DAY if period else None,
    )


def windows(cfg: UnifiedConfig) -> list[Window]:
    """Every modality layer, in the order the dataset and the model's inputs list them."""
    out: list[Window] = []
    t = cfg.data.temporality
    for key, (base, _, _) in MODALITY_LAYERS.items():
        mod = getattr(cfg.data.modalities, key)
        if mod is None:
            continue
        mosaic = mod.space_mode == "mosaic"
        if isinstance(t, FramedPointInTime):
            for side in ("lookbehind", "lookahead"):
                for i, w in enumerate(t.windows(side)):
                    name = f"{base}_{side}_{i}" if t.is_list_form() else f"{base}_{side}"
                    days = observation_days(w.observation)[0]
                    offset: float | None = -(w.offset_days + days)
                    if side == "lookahead":
                        offset = w.offset_days or None
                    out.append(_observed(name, key, w.observation, offset, mosaic))
        elif isinstance(t, Period):
            out.append(_observed(base, key, t.observation, None, mosaic))
        elif isinstance(t, PointInTime):
            s = float(t.observation_window_seconds)
            out.append(Window(base, key, 1, s, -s / 2, "CONTAINS", None))
    return out


def _data_source(cfg: UnifiedConfig, w: Window) -> dict[str, Any]:
    query: dict[str, Any] = {
        "space_mode": w.space_mode,
        "min_matches": w.groups,
        "max_matches": w.groups,
    }
    if w.period_s is not None:
        query["period_duration"] = _seconds(w.period_s)
        query["mosaic_compositing_overlaps"] = 1
        query["per_period_mosaic_reverse_time_order"] = False
    common = {"cache_dir": "cache/planetary_computer", "timeout": "0:0:10"}
    if w.modality == "sentinel2_l2a":
        source: dict[str, Any] = {
            "class_path": f"{PC}.Sentinel2",
            "init_args": {
                "harmonize": True,
                "sort_by": "eo:cloud_cover",
                "query": {"eo:cloud_cover": {"gte": 0}},
                **common,
            },
        }
    else:
        orbit = cfg.data.modalities.sentinel1_rtc
        direction = (
            "descending" if orbit and orbit.orbit_direction.startswith("desc") else "ascending"
        )
        source = {
            "class_path": f"{PC}.Sentinel1",
            "init_args": {
                "query": {
                    "sar:instrument_mode": {"eq": "IW"},
                    "sar:polarizations": {"eq": ["VV", "VH"]},
                    "sat:orbit_state": {"eq": direction},
                },
                **common,
            },
        }
    source.update(ingest=False, query_config=query, duration=_seconds(w.duration_s))
    if w.offset_s is not None:
        source["time_offset"] = _seconds(w.offset_s)
    return source


def modality_of(layer: str) -> str | None:
    """The modality key (``sentinel2_l2a``, ``sentinel1_rtc``) of a transpiled layer name."""
    for key, (base, _, _) in MODALITY_LAYERS.items():
        if layer == base or layer.startswith(base + "_"):
            return key
    return None


def apply_overrides(
    layer: str, modality: str, source: dict[str, Any], overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """A layer's data source with the project's override for it (layer name, else modality).

    The override's ``class_path`` and ``init_args`` replace the source's, and ``ingest``
    goes back to rslearn's default (a local source is ingested) unless given; its other
    keys (``query_config``...) are set over the transpiled ones. The observation frame
    (``duration``, ``time_offset``, periods) is kept unless the override gives it.
    """
    if not overrides:
        return source
    given = overrides.get(layer, overrides.get(modality))
    if not isinstance(given, dict):
        return source
    out = {k: v for k, v in source.items() if k not in ("class_path", "init_args", "ingest")}
    out["class_path"] = given["class_path"]
    out["init_args"] = copy.deepcopy(given.get("init_args") or {})
    for k, v in given.items():
        if k not in ("class_path", "init_args"):
            out[k] = copy.deepcopy(v)
    return out


def field_dtype(fields: list[ClassesField | RegressionField]) -> str:
    """The output band set's dtype (one band set has one dtype).

    The smallest unsigned type holding every class value and nodata; ``float32`` when a
    field is a regression.
    """
    if any(isinstance(f, RegressionField) for f in fields):
        return "float32"
    top = 0
    for f in fields:
        assert isinstance(f, ClassesField)
        values = [v.value for v in f.allowed_values if isinstance(v.value, int)]
        top = max([top, *values, f.nodata_value or 0])
    return "uint8" if top <= 255 else "uint16" if top <= 65535 else "uint32"


def dataset_config(cfg: UnifiedConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rslearn dataset config of a unified file."""
    layers: dict[str, Any] = {}
    for w in windows(cfg):
        _, bands, dtype = MODALITY_LAYERS[w.modality]
        layers[w.layer] = {
            "type": "raster",
            "band_sets": [{"bands": list(bands), "dtype": dtype, "format": dict(NUMPY_FORMAT)}],
            "data_source": apply_overrides(w.layer, w.modality, _data_source(cfg, w), overrides),
        }
    fields = cfg.data.output.field_list()
    if cfg.data.output.data_type == "raster":
        dtype = field_dtype(fields)
        layers[LABELS_LAYER] = {
            "type": "raster",
            "band_sets": [
                {
                    "bands": [f.name],
                    "dtype": field_dtype([f]),
                    "format": dict(NUMPY_FORMAT),
                }
                for f in fields
            ],
        }
        out_set: dict[str, Any] = {
            "bands": [f.name for f in fields],
            "dtype": dtype,
            "format": dict(GEOTIFF_FORMAT),
        }
        layers[OUTPUT_LAYER] = {"type": "raster", "band_sets": [out_set]}
    else:
        layers[LABELS_LAYER] = {"type": "vector"}
        layers[OUTPUT_LAYER] = {"type": "vector"}
    # One file per layer for all its item groups (the reference's storage; 22 groups).
    return {"layers": layers, "window_data_storage": {"class_path": PER_LAYER_STORAGE}}


def _embedding_size(cfg: UnifiedConfig) -> int | None:
    """The encoder's embedding size: given with its source, or the released model's."""
    assert cfg.model is not None
    src = cfg.model.encoder.source
    if isinstance(src, HuggingfaceSource):
        return EMBEDDING_SIZES.get(src.model_id)
    return src.embedding_size


def _model_path(given: str, project_dir: Path | None) -> tuple[str, Path | None]:
    """(``model_path`` as written for the run, the bundle directory it names here).

    ``extra_model_files`` becomes ``${EXTRA_FILES_PATH}`` (the runner sets it to the
    project's ``extra_model_files/``); another relative path is made absolute (relative
    to the project, not to where a run starts). The bundle is None without a project.
    """
    path = EXTRA_FILES_VAR if given.rstrip("/") == EXTRA_FILES_DIR else given
    if project_dir is None:
        return path, None
    if "${" not in path and not Path(path).is_absolute():
        path = str(project_dir / path)
    return path, Path(expand(path, {"EXTRA_FILES_PATH": str(project_dir / EXTRA_FILES_DIR)}))


def _architecture_only(bundle: Path | None) -> bool:
    """Whether a bundle holds ``config.json`` and no weights file."""
    if bundle is None or not (bundle / "config.json").is_file():
        return False
    return not any((bundle / w).is_file() for w in WEIGHT_FILES)


def _encoder(cfg: UnifiedConfig, project_dir: Path | None) -> dict[str, Any]:
    assert cfg.model is not None
    enc = cfg.model.encoder
    src = enc.source
    args: dict[str, Any] = {"patch_size": enc.patch_size}
    if isinstance(src, HuggingfaceSource):
        args["model_id"] = src.model_id
    elif isinstance(src, RegistrySource):
        args["model_path"] = EXTRA_FILES_VAR
    elif isinstance(src, ModelPathSource):
        args["model_path"], bundle = _model_path(src.model_path, project_dir)
        if _architecture_only(bundle):  # the checkpoint holds the weights
            args["random_initialization"] = True
    else:
        args["checkpoint_path"] = src.checkpoint_path
    size = _embedding_size(cfg)
    if size is not None:
        args["embedding_size"] = size
    args["autocast_dtype"] = "bfloat16"
    if enc.use_legacy_timestamps is not None:
        args["use_legacy_timestamps"] = enc.use_legacy_timestamps
    if enc.token_pooling is not None:
        args["token_pooling"] = enc.token_pooling
    return {"class_path": "rslearn.models.olmoearth_pretrain.model.OlmoEarth", "init_args": args}


def _head(cfg: UnifiedConfig, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(decoder layers, task) of one head."""
    assert cfg.model is not None
    task = cfg.model.tasks[name]
    if isinstance(task, ManualTask):
        layers = [_spec(layer.class_path, layer.init_args) for layer in task.decoder_layers]
        return layers, _spec(task.task.class_path, task.task.init_args)
    assert isinstance(task, SegmentationTask)
    field = next(f for f in cfg.data.output.field_list() if f.name == name)
    assert isinstance(field, ClassesField)
    classes = len(field.allowed_values)
    unet: dict[str, Any] = {
        "in_channels": [[cfg.model.encoder.patch_size, _embedding_size(cfg)]],
        "out_channels": classes,
        "conv_layers_per_resolution": task.decoder.conv_layers_per_resolution,
    }
    layers = [
        _spec("rslearn.models.unet.UNetDecoder", unet),
        _spec("rslearn.train.tasks.segmentation.SegmentationHead", {}),
    ]
    targs: dict[str, Any] = {"num_classes": classes, "metric_kwargs": {"average": "micro"}}
    if field.nodata_value is not None:
        targs["nodata_value"] = field.nodata_value
    return layers, _spec("rslearn.train.tasks.segmentation.SegmentationTask", targs)


def _spec(class_path: str, init_args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"class_path": class_path}
    if init_args:
        out["init_args"] = copy.deepcopy(init_args)
    return out


def model_config(cfg: UnifiedConfig, project_dir: Path | None = None) -> dict[str, Any]:
    """The rslearn/Lightning model config of a unified file (for prediction)."""
    assert cfg.model is not None
    names = [f.name for f in cfg.data.output.field_list()]
    assert all(isinstance(n, str) for n in names)
    decoders: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for n in names:
        assert n is not None
        decoders[n], tasks[n] = _head(cfg, n)
    inputs: dict[str, Any] = {}
    layers_of = windows(cfg)
    for key, (base, bands, _) in MODALITY_LAYERS.items():
        ws = [w for w in layers_of if w.modality == key]
        if not ws:
            continue
        layers = [w.layer if g == 0 else f"{w.layer}.{g}" for w in ws for g in range(w.groups)]
        inputs[base] = {
            "data_type": "raster",
            "layers": layers,
            "bands": list(bands),
            "dtype": "FLOAT32",
            "passthrough": True,
            "load_all_layers": True,
            "is_target": False,
        }
    transforms: list[dict[str, Any]] = []
    if "sentinel1" in inputs:
        transforms.append(
            _spec(
                "rslearn.train.transforms.sentinel1.Sentinel1ToDecibels",
                {"selectors": ["sentinel1"]},
            )
        )
    transforms.append(
        _spec(
            "rslearn.models.olmoearth_pretrain.norm.OlmoEarthNormalize",
            {"band_names": {k: list(v["bands"]) for k, v in inputs.items()}},
        )
    )
    pre = cfg.input_preprocessing
    default_config: dict[str, Any] = {"transforms": transforms}
    if pre is not None and pre.default.input_size is not None:
        default_config = {"crop_size": pre.default.input_size, "transforms": transforms}
    overlap = pre.predict.overlap_pixels if pre and pre.predict else None
    predict_config: dict[str, Any] = {"load_all_crops": True, "skip_targets": True}
    if pre and pre.predict and pre.predict.input_size:
        predict_config["crop_size"] = pre.predict.input_size
    if overlap:
        predict_config["overlap_pixels"] = overlap
    predict_config["output_layer_name_skip_inference_if_exists"] = OUTPUT_LAYER
    factor = cfg.transpiler_context.downsample_factor if cfg.transpiler_context else 1
    merger_args: dict[str, Any] = {"downsample_factor": factor}
    if overlap:
        merger_args = {"overlap_pixels": overlap, **merger_args}
    writer_args: dict[str, Any] = {"path": "${DATASET_PATH}", "output_layer": OUTPUT_LAYER}
    if cfg.data.output.data_type == "raster":  # vector outputs: rslearn's VectorMerger
        writer_args["merger"] = _spec("rslearn.train.prediction_writer.RasterMerger", merger_args)
    writer = _spec(WRITER_CLASS, {**writer_args, "fields": names})
    return {
        "model": _spec(
            "rslearn.train.lightning_module.RslearnLightningModule",
            {
                "model": _spec(
                    "rslearn.models.multitask.MultiTaskModel",
                    {"encoder": [_encoder(cfg, project_dir)], "decoders": decoders},
                )
            },
        ),
        "data": _spec(
            "rslearn.train.data_module.RslearnDataModule",
            {
                "path": "${DATASET_PATH}",
                "batch_size": DEFAULT_BATCH_SIZE,
                "num_workers": "${NUM_WORKERS}",
                "inputs": inputs,
                "task": _spec(
                    "rslearn.train.tasks.multi_task.MultiTask",
                    {"tasks": tasks, "input_mapping": {n: {} for n in names}},
                ),
                "default_config": default_config,
                "predict_config": predict_config,
            },
        ),
        "trainer": {"callbacks": [writer], "strategy": "auto"},
    }


def results_config(cfg: UnifiedConfig) -> dict[str, Any]:
    """The legend: a field per output field, band_index its 1-based position."""
    classification: list[dict[str, Any]] = []
    regression: list[dict[str, Any]] = []
    raster = cfg.data.output.data_type == "raster"
    for i, f in enumerate(cfg.data.output.field_list(), start=1):
        entry: dict[str, Any] = {"property_name": f.name}
        if raster:
            entry["band_index"] = i
        if isinstance(f, ClassesField):
            entry["allowed_values"] = [
                {"value": v.value, "label": v.label, "color": list(v.color)}
                for v in f.allowed_values
            ]
            classification.append(entry)
        else:
            entry.update(min_value=f.min_value, max_value=f.max_value)
            entry["colormap_name"] = f.colormap_name
            regression.append(entry)
    out: dict[str, Any] = {"data_type": cfg.data.output.data_type.upper()}
    if classification:
        out["classification_fields"] = classification
    if regression:
        out["regression_fields"] = regression
    return out


def _partitioner(p: Partitioner, windows_level: bool) -> dict[str, Any]:
    if not isinstance(p, GridPartitioner):
        return {"class_path": f"{PARTITIONERS}.noop.NoopPartitioner"}
    args: dict[str, Any] = {"grid_size": int(p.grid_size) if windows_level else p.grid_size}
    if p.overlap_size:
        args["overlap_size"] = int(p.overlap_size) if windows_level else p.overlap_size
    if p.clip:
        args["clip"] = True
    proj = p.projection
    if isinstance(proj, UseUtm):
        res = abs(proj.x_resolution or 10.0)
        args["output_projection"] = {
            "class_path": "rslearn.utils.geometry.Projection",
            "init_args": {"crs": "EPSG:3857", "x_resolution": res, "y_resolution": -res},
        }
        args["use_utm"] = True
    elif isinstance(proj, CrsProjection):
        args["output_projection"] = {
            "class_path": "rslearn.utils.geometry.Projection",
            "init_args": {
                "crs": proj.crs,
                "x_resolution": proj.x_resolution,
                "y_resolution": proj.y_resolution,
            },
        }
    return {"class_path": f"{PARTITIONERS}.grid.GridPartitioner", "init_args": args}


def _step(step: Any, stage: str, raster: bool) -> dict[str, Any]:
    """A postprocessing stage's strategy (window/partition/request)."""
    if not raster:
        cls = "vector.NoopVector" if stage == "window" else "vector.CombineGeojson"
        return {"class_path": f"{POSTPROCESSORS}.{cls}"}
    if step is None:
        step = CombineGeotiffStep(name="combine_geotiff") if stage != "window" else None
    if isinstance(step, CombineGeotiffStep) and stage != "window":
        args: dict[str, Any] = {}
        if step.max_pixels_per_dimension is not None:
            args["max_pixels_per_dimension"] = step.max_pixels_per_dimension
        if step.value_transform is not None:
            args["value_transform"] = copy.deepcopy(step.value_transform)
        return _spec(f"{POSTPROCESSORS}.raster.CombineGeotiff", args)
    return {"class_path": f"{POSTPROCESSORS}.raster.NoopRaster"}


def run_config(cfg: UnifiedConfig) -> dict[str, Any]:
    """The strategies of ``prediction_requests`` (and the legend) as ``olmoearth_run.yaml``."""
    pr = cfg.prediction_requests
    assert pr is not None
    raster = cfg.data.output.data_type == "raster"
    post = pr.postprocessors
    return {
        "inference_results_config": results_config(cfg),
        "partition_strategies": {
            "partition_request_geometry": _partitioner(
                pr.partitioners.request_to_partitions, False
            ),
            "prepare_window_geometries": _partitioner(pr.partitioners.partition_to_windows, True),
        },
        "postprocessing_strategies": {
            "process_window": _step(post.window if post else None, "window", raster),
            "process_partition": _step(post.partition if post else None, "partition", raster),
            "process_dataset": _step(post.request if post else None, "request", raster),
        },
    }


def transpile(
    cfg: UnifiedConfig, project_dir: Path | None = None, overrides: dict[str, Any] | None = None
) -> Transpiled:
    """Every file a run of ``cfg`` uses.

    Args:
        cfg: the parsed ``olmoearth_config.yaml`` (with a model and prediction requests).
        project_dir: where relative paths of the file point (an encoder bundle).
        overrides: data sources by layer name or modality key (``data_sources.yaml``).
    """
    return Transpiled(
        dataset=dataset_config(cfg, overrides),
        model=model_config(cfg, project_dir),
        results=results_config(cfg),
        run=run_config(cfg),
    )
