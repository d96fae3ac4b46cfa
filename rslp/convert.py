"""Convert a project between the seed format and the reference format (:mod:`rslp.formats`).

Both formats hold the same project model, so a conversion moves keys, not meaning:

- seed -> reference: ``partition_strategies.yaml`` and ``postprocessing_strategies.yaml``
  become the sections of ``olmoearth_run.yaml``; the seed's ``projection`` becomes the
  window-level partitioner's ``output_projection`` (an rslearn ``Projection``; ``use_utm:
  true`` when the seed's projection has no CRS); ``inference_results_config`` is kept, or
  made from the output layer (its type, and its class names with the colours the COG
  already uses); the default request becomes ``prediction_request_geometry.geojson``.
- reference -> seed: the reverse; a window-level ``output_projection``/``use_utm`` becomes
  the seed's ``projection`` when it can (square, north-up pixels).

Class paths are kept as written (both formats accept ours, the seed's and the
reference's). Every other file and directory is copied, except ``scratch/`` and hidden
entries; YAML comments in the converted files are not kept. The new project is built under
a temporary name and renamed into place, so a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from rslp import formats
from rslp.common.partitioners.projection_args import check_projection_args
from rslp.common.postprocessing.geotiff import PALETTE
from rslp.errors import ProjectError
from rslp.fsutil import copy_project, new_dir
from rslp.project import (
    ProjectFiles,
    load_partition_strategies,
    load_postprocessing_strategies,
    read_json,
    read_yaml,
)

FINETUNE_YAML = "finetune_strategies.yaml"
PROJECTION_CLASS = "rslearn.utils.geometry.Projection"
# The CRS written beside use_utm: true (the reference reads only the resolution then).
UTM_PLACEHOLDER_CRS = "EPSG:3857"


class _Dumper(yaml.SafeDumper):
    """Block style, except short lists of numbers or strings (colours, sizes) on one line."""


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = len(data) <= 8 and all(isinstance(v, int | float | str) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list)


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False))


def _projection_args(projection: dict[str, Any]) -> dict[str, Any]:
    """The seed's ``projection`` as a partitioner's ``output_projection`` and ``use_utm``."""
    res = float(projection.get("resolution", 10.0))
    crs = projection.get("crs")
    out: dict[str, Any] = {
        "output_projection": {
            "class_path": PROJECTION_CLASS,
            "init_args": {
                "crs": crs or UTM_PLACEHOLDER_CRS,
                "x_resolution": res,
                "y_resolution": -res,
            },
        }
    }
    if crs is None:
        out["use_utm"] = True
    return out


def _takes_projection(class_path: str, source: Path) -> None:
    """A window partitioner must take ``output_projection`` for the seed's projection to move.

    Raises:
        ProjectError: when it does not (the reference format has no project projection).
    """
    import inspect

    from rslp.plugins import import_class

    cls = import_class(class_path, source=source, key="strategy_small.class_path")
    params = inspect.signature(cls).parameters
    if "output_projection" not in params and not any(
        p.kind is p.VAR_KEYWORD for p in params.values()
    ):
        raise ProjectError(
            source,
            f"{cls.__name__} takes no output_projection, so the projection has no place in "
            f"{formats.RUN_YAML}",
            "projection",
            hint="give the partitioner output_projection/use_utm, or keep the seed format",
        )


def _output_layer(files: ProjectFiles) -> tuple[str | None, dict[str, Any]]:
    """The output layer's name and dataset.json entry (None, {} when not found)."""
    from rslp.runner.context import writer_layer

    dataset = read_json(files.dataset_json)
    layers = dataset.get("layers") if isinstance(dataset, dict) else None
    name, layer = writer_layer(read_yaml(files.model_yaml), layers)
    return (name, layer) if layer is not None else (None, {})


def results_config_for(files: ProjectFiles) -> dict[str, Any]:
    """An ``inference_results_config`` describing the project's output layer.

    Its type gives ``data_type``; its class names (when it has them) become one
    classification field with the palette colours the result COG is drawn with.
    """
    name, layer = _output_layer(files)
    cfg: dict[str, Any] = {"data_type": str(layer.get("type", "raster")).upper()}
    names = layer.get("class_names")
    if isinstance(names, list) and names:
        bands = [b for bs in layer.get("band_sets") or [] for b in bs.get("bands") or []]
        cfg["classification_fields"] = [
            {
                "property_name": bands[0] if bands else (name or "label"),
                "band_index": 1,
                "allowed_values": [
                    {"value": i, "label": str(n), "color": list(PALETTE[i % len(PALETTE)])}
                    for i, n in enumerate(names)
                ],
            }
        ]
    return cfg


def to_reference(files: ProjectFiles, staging: Path) -> list[str]:
    """Write ``olmoearth_run.yaml`` (and the request) of a seed-format project into ``staging``.

    Returns:
        notes on what changed shape.
    """
    load_partition_strategies(files)  # the files' shape and values, as a run checks them
    load_postprocessing_strategies(files)
    part = read_yaml(files.partition_strategies_yaml)
    post = read_yaml(files.postprocessing_strategies_yaml)
    notes: list[str] = []
    small = copy.deepcopy(part["strategy_small"])
    args = small.get("init_args") or {}
    if "projection" in part and not ({"output_projection", "use_utm"} & set(args)):
        _takes_projection(small["class_path"], files.partition_strategies_yaml)
        small["init_args"] = {**args, **_projection_args(part["projection"] or {})}
        notes.append("projection -> prepare_window_geometries.init_args.output_projection")
    run: dict[str, Any] = {
        "partition_strategies": {
            "partition_request_geometry": part.get("strategy_large"),
            "prepare_window_geometries": small,
        },
        "postprocessing_strategies": {
            "process_window": post.get("strategy_small"),
            "process_partition": post.get("strategy_medium"),
            "process_dataset": post.get("strategy_large"),
        },
        "inference_results_config": post.get("inference_results_config")
        or results_config_for(files),
    }
    if "inference_results_config" not in post:
        notes.append("inference_results_config made from the output layer")
    finetune = files.project_dir / FINETUNE_YAML
    if finetune.is_file():
        run["window_prep"] = read_yaml(finetune)
    _dump(staging / formats.RUN_YAML, run)
    shutil.copyfile(files.request_geojson, staging / formats.REFERENCE_REQUEST)
    return notes


def _seed_projection(small: dict[str, Any]) -> dict[str, Any] | None:
    """Lift a window-level ``output_projection``/``use_utm`` into the seed's ``projection``."""
    args = small.get("init_args") or {}
    try:
        own = check_projection_args(args.get("output_projection"), args.get("use_utm", False))
    except ValueError:
        return None
    if own is None:
        return None
    crs, res = own
    for k in ("output_projection", "use_utm"):
        args.pop(k, None)
    small["init_args"] = args
    out: dict[str, Any] = {} if crs is None else {"crs": crs}
    if not math.isnan(res):
        out["resolution"] = res
    return out


def to_seed(files: ProjectFiles, staging: Path) -> list[str]:
    """Write the seed-format files of a reference-format project into ``staging``.

    Returns:
        notes on what changed shape or was left out.
    """
    load_partition_strategies(files)  # the file's shape and values, as a run checks them
    load_postprocessing_strategies(files)
    run = read_yaml(files.partition_strategies_yaml)
    notes: list[str] = []
    part = formats.section(run, formats.PARTITION_ROLE)
    small = copy.deepcopy(part.get("strategy_small") or {})
    projection = _seed_projection(small)
    part_out: dict[str, Any] = {
        "strategy_large": part.get("strategy_large"),
        "strategy_small": small,
    }
    if projection is not None:
        part_out["projection"] = projection
        notes.append("prepare_window_geometries output_projection -> projection")
    _dump(staging / formats.PARTITION_ROLE, part_out)
    _dump(staging / formats.POSTPROCESSING_ROLE, formats.section(run, formats.POSTPROCESSING_ROLE))
    if isinstance(run.get("window_prep"), dict):
        _dump(staging / FINETUNE_YAML, run["window_prep"])
    known = {"partition_strategies", "postprocessing_strategies", "inference_results_config"}
    dropped = sorted(k for k in run if k not in known | {"window_prep"})
    if dropped:
        notes.append(
            f"top-level key(s) {dropped} of {formats.RUN_YAML} have no place and are left out"
        )
    (staging / "prediction").mkdir(exist_ok=True)
    name = files.request_geojson.name
    earlier = sorted(p.name for p in (staging / "prediction").glob("*.geojson"))
    if (staging / "prediction" / name).exists() or (earlier and earlier[0] < name):
        name = "0-" + name  # stays the default: the first request by name
        notes.append(f"the request is prediction/{name}, the first by name")
    shutil.copyfile(files.request_geojson, staging / "prediction" / name)
    return notes


LEGACY = {"legacy": formats.REFERENCE}


def from_unified(files: ProjectFiles, to: str, out: Path) -> list[str]:
    """A unified project written out as the reference format: what its runs use.

    ``dataset.json``, ``model.yaml`` and ``olmoearth_run.yaml`` are the transpiled files
    (``data_sources.yaml`` is part of ``dataset.json`` then); every other file is copied.
    The way back is not written: a reference project holds what a unified file cannot
    say (any rslearn model), so ``--to unified`` is refused.
    """
    if to != formats.REFERENCE or files.source is None:
        raise ProjectError(
            files.project_dir,
            f"converting to the {to} format is not supported: a unified project converts "
            "to the reference format (--to reference), and only that way",
        )
    from rslp.formats.unified import DATA_SOURCES_YAML

    out = out.resolve()
    if out.exists():
        raise ProjectError(out, "already exists; give a new directory")
    leave = {files.source.name, DATA_SOURCES_YAML}
    with new_dir(out) as staging:
        copy_project(files.project_dir, staging, leave, set())
        shutil.copyfile(files.dataset_json, staging / "dataset.json")
        shutil.copyfile(files.model_yaml, staging / "model.yaml")
        shutil.copyfile(files.partition_strategies_yaml, staging / formats.RUN_YAML)
    notes = [f"{files.source.name} transpiled: dataset.json, model.yaml, {formats.RUN_YAML}"]
    if (files.project_dir / DATA_SOURCES_YAML).is_file():
        notes.append(f"{DATA_SOURCES_YAML}'s sources are in dataset.json")
    return notes


def convert(project_dir: Path, to: str, out: Path) -> list[str]:
    """Convert ``project_dir`` into format ``to`` (``seed`` or ``reference``) at ``out``.

    Returns:
        notes on what changed shape (for the user).

    Raises:
        ProjectError: the project cannot be read, is already in that format, or ``out``
            exists.
    """
    to = LEGACY.get(to, to)
    if to not in formats.FORMATS:
        raise ProjectError(
            project_dir, f"unknown format {to!r}; use one of {list(formats.FORMATS)}"
        )
    files = ProjectFiles.from_dir(project_dir)
    if files.format == formats.UNIFIED or to == formats.UNIFIED:
        return from_unified(files, to, out)
    if files.format == to:
        raise ProjectError(project_dir, f"the project is already in the {to} format")
    out = out.resolve()
    if out.exists():
        raise ProjectError(out, "already exists; give a new directory")
    own = {formats.PARTITION_ROLE, formats.POSTPROCESSING_ROLE, formats.RUN_YAML, FINETUNE_YAML}
    with new_dir(out) as staging:
        copy_project(files.project_dir, staging, own, {files.request_geojson})
        return to_reference(files, staging) if to == formats.REFERENCE else to_seed(files, staging)
