"""Rules on ``inference_results_config`` and on where this runner's meaning differs on purpose.

``inference_results_config`` (required in the reference format, optional in the seed's
``postprocessing_strategies.yaml``) must agree with the output layer: its ``data_type``
with the layer's type, band indexes with its bands, class values with its dtype and nodata.
The reference runner's CombineGeotiff writes nodata 0 by default, which hides class 0;
this runner keeps the output layer's nodata and says so once, here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rslp import formats
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document
from rslp.checks.project import ProjectDocs
from rslp.checks.rules.values import dtype_problem
from rslp.common.postprocessing.interface import class_at
from rslp.common.postprocessing.legend import Legend, colormap_names
from rslp.config import InferenceResultsConfig
from rslp.nested import dig
from rslp.runner.context import DEFAULT_NODATA, writer_layer

IRC = "inference_results_config"


def _output_layer(project: ProjectDocs) -> tuple[str, dict[str, Any]] | None:
    mdoc, ddoc = project.docs.get("model.yaml"), project.valid("dataset.json")
    if mdoc is None or ddoc is None:
        return None
    name, layer = writer_layer(mdoc.data, ddoc.data["layers"])
    return None if layer is None else (name, layer)


def _nodata(layer: dict[str, Any]) -> tuple[str, float | None]:
    bs = (layer.get("band_sets") or [{}])[0]
    dtype = str(bs.get("dtype", "float32")).lower()
    nodata = bs.get("nodata_value")
    if nodata is None:
        nodata = DEFAULT_NODATA.get(dtype)
    return dtype, nodata


def _bands(layer: dict[str, Any]) -> int:
    return sum(len(bs.get("bands") or []) for bs in layer.get("band_sets") or [])


def check_results_config(project: ProjectDocs) -> list[Diagnostic]:
    """inference_results_config agrees with the output layer (type, bands, values, nodata)."""
    doc = project.valid("postprocessing_strategies.yaml")
    cfg = doc.data.get(IRC) if doc is not None else None
    found = _output_layer(project)
    if doc is None or not isinstance(cfg, dict) or found is None:
        return []
    name, layer = found
    out: list[Diagnostic] = []
    ltype = str(layer.get("type", "")).upper()
    dtype = str(cfg.get("data_type", "")).upper()
    if ltype in ("RASTER", "VECTOR") and dtype != ltype:
        out.append(
            doc.diag(
                f"data_type {dtype} does not match the output layer {name!r}, which is "
                f"{ltype.lower()}",
                (IRC, "data_type"),
                hint=f"set data_type: {ltype}",
                rule="results",
            )
        )
        return out
    if ltype == "RASTER":
        out += _raster_fields(doc, cfg, name, layer)
    else:
        out += _vector_properties(doc, cfg, project)
    return out + _class_names(doc, cfg, layer)


def _vector_properties(
    doc: Document, cfg: dict[str, Any], project: ProjectDocs
) -> list[Diagnostic]:
    """A classification field names the property the model's task writes."""
    mdoc = project.docs.get("model.yaml")
    task = dig(mdoc.data, "data", "init_args", "task") if mdoc is not None else None
    path = dig(task, "class_path")
    written = dig(task, "init_args", "property_name")
    if not (isinstance(path, str) and path.endswith("ClassificationTask")):
        return []
    if not isinstance(written, str):
        return []  # its own parse reports a missing property_name
    out = []
    for i, field in enumerate(cfg.get("classification_fields") or []):
        if field.get("property_name") != written:
            out.append(
                doc.diag(
                    f"property_name {field.get('property_name')!r}, but the model's "
                    f"ClassificationTask writes its classes as {written!r}",
                    (IRC, "classification_fields", i, "property_name"),
                    hint=f"set property_name: {written}",
                    rule="results",
                    severity="warning",
                )
            )
    return out


def _raster_fields(
    doc: Document, cfg: dict[str, Any], name: str, layer: dict[str, Any]
) -> list[Diagnostic]:
    out = []
    bands = _bands(layer)
    dtype, nodata = _nodata(layer)
    for kind in ("classification_fields", "regression_fields"):
        for i, field in enumerate(cfg.get(kind) or []):
            band = field.get("band_index")
            if isinstance(band, int) and band > bands:
                out.append(
                    doc.diag(
                        f"band_index {band}, but the output layer {name!r} has {bands} band(s)",
                        (IRC, kind, i, "band_index"),
                        rule="results",
                    )
                )
            cmap = field.get("colormap_name")
            if isinstance(cmap, str) and cmap.lower().removesuffix("_r") not in colormap_names():
                out.append(
                    doc.diag(
                        f"colormap {cmap!r} is not one this runner draws; the quicklook "
                        "uses viridis",
                        (IRC, kind, i, "colormap_name"),
                        hint=f"one of {', '.join(colormap_names())} (or with _r)",
                        rule="results",
                        severity="warning",
                    )
                )
            for j, v in enumerate(field.get("allowed_values") or []):
                value = v.get("value")
                key = (IRC, kind, i, "allowed_values", j, "value")
                if isinstance(value, str) and not value.isdigit():
                    out.append(
                        doc.diag(
                            f"class value {value!r} is not a number: a raster stores numbers",
                            key,
                            rule="results",
                        )
                    )
                    continue
                number = int(value)
                why = dtype_problem(number, dtype)
                if why is not None:
                    out.append(
                        doc.diag(
                            f"class value {why}: the output layer {name!r} is {dtype}",
                            key,
                            hint=f"use a value {dtype} holds, or widen the output layer's dtype "
                            "in dataset.json",
                            rule="results",
                        )
                    )
                elif nodata is not None and not np.isnan(nodata) and number == nodata:
                    out.append(
                        doc.diag(
                            f"class value {number} ({v.get('label')!r}) is the output layer's "
                            "nodata value: its pixels would read as no data",
                            key,
                            hint="set the layer's nodata_value in dataset.json to another value",
                            rule="results",
                        )
                    )
    return out


def _class_names(doc: Document, cfg: dict[str, Any], layer: dict[str, Any]) -> list[Diagnostic]:
    names = layer.get("class_names")
    fields = cfg.get("classification_fields") or []
    if not isinstance(names, list) or not fields:
        return []
    out = []
    for j, v in enumerate(fields[0].get("allowed_values") or []):
        value, label = v.get("value"), v.get("label")
        if isinstance(value, int) and 0 <= value < len(names) and names[value] != label:
            out.append(
                doc.diag(
                    f"label {label!r} for value {value}, but dataset.json names class {value} "
                    f"{names[value]!r}; the COG's class tags use dataset.json's names",
                    (IRC, "classification_fields", 0, "allowed_values", j, "label"),
                    rule="results",
                    severity="warning",
                )
            )
    return out


def _results_config(data: Any) -> InferenceResultsConfig | None:
    try:
        return InferenceResultsConfig.model_validate(data) if isinstance(data, dict) else None
    except ValueError:
        return None


def check_reference_differences(project: ProjectDocs) -> list[Diagnostic]:
    """Where a reference class would mean something else here, say what this runner does."""
    doc = project.valid("postprocessing_strategies.yaml")
    found = _output_layer(project)
    if doc is None or found is None:
        return []
    name, layer = found
    dtype, nodata = _nodata(layer)
    own = list(layer.get("class_names") or [])
    legend = None if own else Legend.from_results_config(_results_config(doc.data.get(IRC)))
    out = []
    for key in ("strategy_small", "strategy_medium", "strategy_large"):
        node = doc.data.get(key)
        if not isinstance(node, dict) or not str(node.get("class_path", "")).endswith(
            "CombineGeotiff"
        ):
            continue
        args = node.get("init_args") or {}
        given = args.get("nodata_value")
        reference = str(node["class_path"]).startswith("olmoearth_run.")
        value = given if given is not None else (0 if reference else None)
        if not isinstance(value, int | float) or not float(value).is_integer():
            continue
        hidden = class_at(value, own, legend)
        if hidden is not None and value != nodata:
            said = "nodata_value" if given is not None else "the reference runner's nodata 0"
            out.append(
                doc.diag(
                    f"{said} is class {hidden!r}; this runner writes nodata "
                    f"{nodata} (the output layer's) so that class stays visible",
                    (key, "init_args", "nodata_value") if given is not None else (key,),
                    hint="set nodata_value to a value that is not a class id",
                    rule="reference",
                    severity="warning",
                )
            )
    run = project.docs.get(formats.RUN_YAML)
    if run is not None and isinstance(run.data, dict):
        known = {
            "partition_strategies",
            "postprocessing_strategies",
            IRC,
            "window_prep",
            "dataset_build",
        }
        for k in sorted(set(run.data) - known, key=str):
            out.append(
                run.diag(
                    f"top-level key {k!r} is not used by this runner",
                    (k,),
                    rule="reference",
                    severity="notice",
                )
            )
    return out
