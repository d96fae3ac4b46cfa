"""Rules the schemas cannot express: pydantic validators, constructor checks, CRS names."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ValidationError

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document
from rslp.checks.project import ProjectDocs
from rslp.nested import dig


def _pydantic(doc: Document, model: type[BaseModel], what: str) -> list[Diagnostic]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.model_validate(doc.data)
    except ValidationError as e:
        return [
            doc.diag(f"{what}: {err['msg']}", tuple(err["loc"]), rule="semantics")
            for err in e.errors()
        ]
    return []


def check_dataset_semantics(project: ProjectDocs) -> list[Diagnostic]:
    """dataset.json passes rslearn's own validators (layer names, durations, band sets...)."""
    from rslearn.config import DatasetConfig

    doc = project.valid("dataset.json")
    if doc is None:
        return []
    return _pydantic(doc, DatasetConfig, "rslearn rejects it") + _durations(doc, doc.data, ())


DURATION_KEYS = {"time_offset", "duration", "period_duration"}


def _durations(doc: Document, node: Any, key: tuple[str | int, ...]) -> list[Diagnostic]:
    """Duration strings rslearn would silently read as None (pytimeparse cannot parse them)."""
    import pytimeparse

    out: list[Diagnostic] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in DURATION_KEYS and isinstance(v, str) and pytimeparse.parse(v) is None:
                out.append(
                    doc.diag(
                        f"{k} {v!r} is not a duration rslearn understands (it would be ignored)",
                        (*key, k),
                        hint="write e.g. '30d', '-180d', '12h'",
                        rule="semantics",
                    )
                )
            else:
                out += _durations(doc, v, (*key, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _durations(doc, v, (*key, i))
    return out


# (role, key) -> the partitioner level that key calls
_LEVEL = {
    ("partition_strategies.yaml", "strategy_large"): "request",
    ("partition_strategies.yaml", "strategy_small"): "windows",
}
_LEVEL_HINT = {
    "request": "split the request with a Noop, Grid, FixedWindow or Chunk partitioner",
    "windows": "make windows with a Grid, FixedWindow, Noop or Reprojection partitioner",
}


def check_strategy_semantics(project: ProjectDocs) -> list[Diagnostic]:
    """Strategies construct (their own argument checks) and the projection CRS exists."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    from rslp.config import PartitionStrategiesConfig, PostprocessingStrategiesConfig
    from rslp.plugins import import_class

    models: dict[str, type[BaseModel]] = {
        "partition_strategies.yaml": PartitionStrategiesConfig,
        "postprocessing_strategies.yaml": PostprocessingStrategiesConfig,
    }
    out: list[Diagnostic] = []
    for name, model in models.items():
        doc = project.valid(name)
        if doc is None:
            continue
        found = _pydantic(doc, model, "the runner rejects it")  # what no schema says (NaN)
        if found:
            out += found
            continue
        for key, node in doc.data.items():
            if not isinstance(node, dict) or not isinstance(node.get("class_path"), str):
                continue
            try:
                cls = import_class(node["class_path"], source=doc.path, key=key)
                cls(**(node.get("init_args") or {}))
            except Exception as e:  # a constructor rejecting its arguments
                out.append(
                    doc.diag(f"{type(e).__name__}: {e}", (key, "init_args"), rule="semantics")
                )
                continue
            level = _LEVEL.get((name, key))
            levels = getattr(cls, "LEVELS", None)
            if level is not None and isinstance(levels, tuple) and level not in levels:
                out.append(
                    doc.diag(
                        f"{cls.__name__} works only at the {' and '.join(levels)} level, not at "
                        f"the {level} level",
                        (key, "class_path"),
                        hint=_LEVEL_HINT[level],
                        rule="semantics",
                    )
                )
        proj = doc.data.get("projection")
        crs = proj.get("crs") if isinstance(proj, dict) else None
        if isinstance(crs, str):
            try:
                CRS.from_user_input(crs)
            except CRSError as e:
                out.append(
                    doc.diag(f"unknown CRS {crs!r}: {e}", ("projection", "crs"), rule="semantics")
                )
    return out


def _layers(project: ProjectDocs) -> dict[str, Any]:
    """dataset.json's layers, when it passed its schema (else nothing to compare with)."""
    doc = project.valid("dataset.json")
    return doc.data["layers"] if doc is not None else {}


def _bands(layer: dict[str, Any]) -> set[str]:
    return {b for bs in layer.get("band_sets") or [] for b in (bs.get("bands") or [])}


def check_model_inputs(project: ProjectDocs) -> list[Diagnostic]:
    """The data module's inputs name dataset.json layers, and bands those layers have."""
    doc = project.docs.get("model.yaml")
    layers = _layers(project)
    inputs = dig(doc.data, "data", "init_args", "inputs") if doc is not None else None
    if doc is None or not layers or not isinstance(inputs, dict):
        return []
    out = []
    for iname, spec in inputs.items():
        names = dig(spec, "layers")
        for li, lname in enumerate(names if isinstance(names, list) else []):
            base = str(lname).split(".")[0]
            key = ("data", "init_args", "inputs", iname, "layers", li)
            if base not in layers:
                out.append(
                    doc.diag(
                        f"input {iname!r} reads layer {lname!r}, not defined in dataset.json",
                        key,
                        hint=f"layers are {sorted(layers)}",
                        rule="inputs",
                    )
                )
                continue
            have = _bands(layers[base])
            bands = dig(spec, "bands")
            bands = bands if isinstance(bands, list) else []
            missing = [b for b in bands if not isinstance(b, str) or (have and b not in have)]
            if missing:
                out.append(
                    doc.diag(
                        f"input {iname!r} reads bands {missing} that dataset.json layer "
                        f"{base!r} lacks ({sorted(have)})",
                        ("data", "init_args", "inputs", iname, "bands"),
                        rule="inputs",
                    )
                )
    return out


def check_postprocessor_types(project: ProjectDocs) -> list[Diagnostic]:
    """Each postprocessing strategy handles the output layer's type (raster or vector)."""
    from rslp.plugins import import_class
    from rslp.runner.context import find_writer
    from rslp.templates import output_layer_name

    doc = project.valid("postprocessing_strategies.yaml")
    mdoc = project.docs.get("model.yaml")
    if doc is None or mdoc is None:
        return []
    found = find_writer(mdoc.data)
    name = output_layer_name(dig(found[1], "init_args", "output_layer")) if found else None
    layer = _layers(project).get(name) if isinstance(name, str) else None
    ltype = layer.get("type") if isinstance(layer, dict) else None
    if ltype not in ("raster", "vector"):
        return []
    out = []
    for key, node in doc.data.items():
        try:
            cls = import_class(node["class_path"], source=doc.path, key=key)
        except Exception:  # reported by the class_path rule
            continue
        handles = getattr(cls, "LAYER_TYPE", None)
        if handles is not None and handles != ltype:
            out.append(
                doc.diag(
                    f"{cls.__name__} handles {handles} outputs, but layer {name!r} is {ltype}",
                    (key, "class_path"),
                    hint=f"use a {ltype} postprocessor",
                    rule="semantics",
                )
            )
    return out
