"""Rules: every number is checked against the type it will be stored in, before compute.

A nodata value or a class value that the output's dtype cannot hold would otherwise stop a
run halfway (numpy's ``OverflowError`` while the COG is written, naming no file), and a
legend that lists a value or a label twice would colour the map wrongly without a word.
These rules hold in every project format: they read the roles (``dataset.json``, the
postprocessing section, its ``inference_results_config``), not the files' spellings.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document
from rslp.checks.project import ProjectDocs
from rslp.runner.context import writer_layer

IRC = "inference_results_config"
STAGES = ("strategy_small", "strategy_medium", "strategy_large")


def dtype_problem(value: object, dtype: str) -> str | None:
    """Why ``value`` cannot be stored as ``dtype`` (a numpy dtype name), or None.

    Integer dtypes hold whole numbers in their range; float dtypes hold any number (NaN
    included). An unknown dtype name is not judged here (the schema names it).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            return f"{value!r} is not a whole number, and {dt.name} holds only whole numbers"
        if not info.min <= value <= info.max:
            return f"{value!r} does not fit {dt.name} ({info.min}..{info.max})"
    elif dt.kind == "f" and math.isfinite(value) and abs(value) > np.finfo(dt).max:
        return f"{value!r} does not fit {dt.name}"
    return None


def _band_sets(layer: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    sets = layer.get("band_sets")
    return (
        [(i, bs) for i, bs in enumerate(sets) if isinstance(bs, dict)]
        if isinstance(sets, list)
        else []
    )


def check_nodata_values(project: ProjectDocs) -> list[Diagnostic]:
    """Each raster band set's nodata fits its dtype; the combine's nodata fits the output's."""
    ddoc = project.valid("dataset.json")
    if ddoc is None:
        return []
    out = []
    for name, layer in ddoc.data["layers"].items():
        if not isinstance(layer, dict) or layer.get("type") != "raster":
            continue
        for i, bs in _band_sets(layer):
            nodata, dtype = bs.get("nodata_value"), str(bs.get("dtype", "float32")).lower()
            why = None if nodata is None else dtype_problem(nodata, dtype)
            if why is not None:
                out.append(
                    ddoc.diag(
                        f"nodata_value {why}: the layer's band set is {dtype}",
                        ("layers", name, "band_sets", i, "nodata_value"),
                        hint=f"choose a nodata value that {dtype} holds, e.g. "
                        f"{_suggest(dtype)}, that is no class value",
                        rule="values",
                    )
                )
    return out + _combine_nodata(project)


def _suggest(dtype: str) -> str:
    dt = np.dtype(dtype)
    return str(np.iinfo(dt).max) if dt.kind in "iu" else "nan"


def _combine_nodata(project: ProjectDocs) -> list[Diagnostic]:
    """A CombineGeotiff ``nodata_value`` is written into the output layer's dtype."""
    doc = project.valid("postprocessing_strategies.yaml")
    mdoc, ddoc = project.docs.get("model.yaml"), project.valid("dataset.json")
    if doc is None or mdoc is None or ddoc is None:
        return []
    name, layer = writer_layer(mdoc.data, ddoc.data["layers"])
    sets = _band_sets(layer) if layer is not None and layer.get("type") == "raster" else []
    if not sets:
        return []
    dtype = str(sets[0][1].get("dtype", "float32")).lower()
    out = []
    for key in STAGES:
        node = doc.data.get(key)
        if not isinstance(node, dict) or not str(node.get("class_path", "")).endswith(
            "CombineGeotiff"
        ):
            continue
        args = node.get("init_args")
        value = args.get("nodata_value") if isinstance(args, dict) else None
        why = None if value is None else dtype_problem(value, dtype)
        if why is not None:
            out.append(
                doc.diag(
                    f"nodata_value {why}: the combined COG is {dtype}, the dtype of the "
                    f"output layer {name!r} in dataset.json",
                    (key, "init_args", "nodata_value"),
                    hint=f"a value {dtype} holds that is no class value (e.g. {_suggest(dtype)}), "
                    "or leave nodata_value out to write the output layer's",
                    rule="values",
                )
            )
    return out


def check_legend_entries(project: ProjectDocs) -> list[Diagnostic]:
    """A legend lists each class value once and each label once."""
    doc = project.valid("postprocessing_strategies.yaml")
    cfg = doc.data.get(IRC) if doc is not None else None
    if doc is None or not isinstance(cfg, dict):
        return []
    fields = cfg.get("classification_fields")
    out: list[Diagnostic] = []
    for i, field in enumerate(fields if isinstance(fields, list) else []):
        values = field.get("allowed_values") if isinstance(field, dict) else None
        if isinstance(values, list):
            out += _duplicates(doc, (IRC, "classification_fields", i), values)
    return out


def _duplicates(doc: Document, key: tuple[Any, ...], values: list[Any]) -> list[Diagnostic]:
    out = []
    for attr in ("value", "label"):
        first: dict[object, int] = {}
        for j, v in enumerate(values):
            item = v.get(attr) if isinstance(v, dict) else None
            if item is None or isinstance(item, dict | list):
                continue
            norm = str(item) if attr == "value" else item  # 1 and "1" are one raster value
            if norm in first:
                out.append(
                    doc.diag(
                        f"{attr} {item!r} is listed twice (allowed_values[{first[norm]}] and "
                        f"[{j}]): "
                        + (
                            "each class value gets one label and one colour"
                            if attr == "value"
                            else "two classes with one label cannot be told apart on the map"
                        ),
                        (*key, "allowed_values", j, attr),
                        hint=f"give each class its own {attr}, or drop the repeated entry",
                        rule="values",
                    )
                )
            else:
                first[norm] = j
    return out
