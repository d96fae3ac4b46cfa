"""Rules across dataset.json and model.yaml: the output layer, and LocalFiles band names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rasterio

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import KeyPath
from rslp.checks.project import ProjectDocs
from rslp.nested import dig
from rslp.runner.context import find_writer
from rslp.runner.dataset import local_files_source, unset_env_vars
from rslp.templates import output_layer_name

MAX_FILES_OPENED = 64  # band counts are compared on the first files by name

# Task class name -> the layer type its predictions are written as.
TASK_LAYER_TYPE = {
    "SegmentationTask": "raster",
    "PerPixelRegressionTask": "raster",
    "EmbeddingTask": "raster",
    "ClassificationTask": "vector",
    "RegressionTask": "vector",
    "DetectionTask": "vector",
}


def check_output_layer(project: ProjectDocs) -> list[Diagnostic]:
    """The writer's output layer exists in dataset.json, with the type the task writes."""
    mdoc = project.docs.get("model.yaml")
    if mdoc is None or not isinstance(mdoc.data, dict):
        return []
    found = find_writer(mdoc.data)
    if found is None:
        return [
            mdoc.diag(
                "no rslearn.train.prediction_writer.RslearnWriter in trainer.callbacks: "
                "esrunner cannot write predictions",
                ("trainer",),
                hint="add the writer with init_args.output_layer naming a dataset.json layer",
                rule="output_layer",
                # validate: a warning, as in the seed's sample; a run cannot do without it
                severity="error" if project.for_run else "warning",
            )
        ]
    idx, cb = found
    key = ("trainer", "callbacks", idx, "init_args", "output_layer")
    layer_name = output_layer_name(dig(cb, "init_args", "output_layer"))
    ddoc = project.valid("dataset.json")
    if ddoc is None:
        return []  # dataset.json's own errors are reported
    layers = ddoc.data["layers"]
    if not isinstance(layer_name, str) or layer_name not in layers:
        return [
            mdoc.diag(
                f"output_layer {layer_name!r} is not a layer of dataset.json "
                f"(layers: {sorted(layers)})",
                key,
                hint="add the layer to dataset.json or fix the name",
                rule="output_layer",
            )
        ]
    task_path = dig(mdoc.data, "data", "init_args", "task", "class_path")
    task_name = task_path.rsplit(".", 1)[-1] if isinstance(task_path, str) else ""
    want = TASK_LAYER_TYPE.get(task_name)
    have = layers[layer_name].get("type")
    out = _nodata_problems(ddoc, layer_name, layers[layer_name])
    if want and have and want != have:
        return out + [
            ddoc.diag(
                f"layer {layer_name!r} is {have}, but {task_name} writes {want} predictions",
                ("layers", layer_name, "type"),
                hint=f'set "type": "{want}"',
                rule="output_layer",
            )
        ]
    return out


def _nodata_problems(ddoc: Any, name: str, layer: Any) -> list[Diagnostic]:
    """A raster output layer's nodata value must not be a valid class id."""
    if not isinstance(layer, dict) or layer.get("type") != "raster":
        return []
    classes = layer.get("class_names") or []
    for i, bs in enumerate(layer.get("band_sets") or []):
        nodata = bs.get("nodata_value") if isinstance(bs, dict) else None
        if isinstance(nodata, int | float) and classes and 0 <= nodata < len(classes):
            return [
                ddoc.diag(
                    f"nodata_value {nodata} is the id of class {classes[int(nodata)]!r}",
                    ("layers", name, "band_sets", i, "nodata_value"),
                    hint="use a value that is not a class id, e.g. 255",
                    rule="output_layer",
                )
            ]
    return []


def _band_count(files: list[Path]) -> tuple[int | None, str | None]:
    counts = set()
    for f in files:
        try:
            with rasterio.open(f) as src:
                counts.add(src.count)
        except rasterio.errors.RasterioIOError as e:
            return None, f"{f.name} is not a readable raster ({e})"
    if len(counts) > 1:
        return None, f"files have different band counts {sorted(counts)}"
    return (counts.pop() if counts else None), None


def _check_item_specs(
    ddoc: Any, lname: str, layer: dict[str, Any], specs: Any, src_dir: Path, severity: str
) -> list[Diagnostic]:
    """LocalFiles ``raster_item_specs``: files there, band lists fit them, layer bands named.

    Each spec lists ``fnames`` (relative to ``src_dir``) and, per file, the names of its
    bands; the layer's band sets may only ask for bands some spec names.
    """
    out: list[Diagnostic] = []
    if not isinstance(specs, list):
        return out
    base: KeyPath = ("layers", lname, "data_source", "init_args", "raster_item_specs")
    named: set[str] = set()
    for si, spec in enumerate(specs):
        fnames = spec.get("fnames") if isinstance(spec, dict) else None
        bands = spec.get("bands") if isinstance(spec, dict) else None
        if not isinstance(fnames, list) or not isinstance(bands, list):
            continue
        for fi, fname in enumerate(fnames):
            path = Path(str(fname))
            path = path if path.is_absolute() else src_dir / path
            names = bands[fi] if fi < len(bands) and isinstance(bands[fi], list) else None
            named.update(str(b) for b in names or [])
            if not path.is_file():
                out.append(
                    ddoc.diag(
                        f"file {fname!r} is not in src_dir ({path})",
                        (*base, si, "fnames", fi),
                        hint="fnames are relative to src_dir",
                        rule="local_files",
                        severity=severity,
                    )
                )
                continue
            try:
                with rasterio.open(path) as src:
                    count = src.count
            except rasterio.errors.RasterioIOError as e:
                out.append(
                    ddoc.diag(
                        f"{fname!r} is not a readable raster ({e})",
                        (*base, si, "fnames", fi),
                        rule="local_files",
                        severity=severity,
                    )
                )
                continue
            if names is not None and len(names) != count:
                out.append(
                    ddoc.diag(
                        f"{len(names)} band name(s) for {fname!r}, which has {count} band(s)",
                        (*base, si, "bands", fi),
                        hint="name every band of the file, in file order",
                        rule="local_files",
                    )
                )
    if named:
        out += _unknown_bands(
            ddoc,
            lname,
            layer,
            named,
            f"are named by no raster_item_specs entry (they name {sorted(named)})",
            "use the band names the specs give, or add them to the specs",
        )
    return out


def _unknown_bands(
    ddoc: Any, lname: str, layer: dict[str, Any], valid: set[str], why: str, hint: str
) -> list[Diagnostic]:
    """An error per band set of ``layer`` that asks for bands outside ``valid``."""
    out = []
    for bi, bs in enumerate(layer.get("band_sets") or []):
        bands = bs.get("bands") if isinstance(bs, dict) else None
        bad = [b for b in bands or [] if b not in valid]
        if bad:
            out.append(
                ddoc.diag(
                    f"band(s) {bad} {why}",
                    ("layers", lname, "band_sets", bi, "bands"),
                    hint=hint,
                    rule="local_files",
                )
            )
    return out


def check_local_files_bands(project: ProjectDocs) -> list[Diagnostic]:
    """A LocalFiles raster layer asks only for bands its files have (named ``B1..Bn``)."""
    ddoc = project.valid("dataset.json")
    if ddoc is None:
        return []
    layers = ddoc.data["layers"]
    out: list[Diagnostic] = []
    for lname, layer in layers.items():
        found = local_files_source(layer, project.root)
        if found is None:
            continue
        args, src_dir = found
        src = args["src_dir"]
        ds = layer["data_source"]
        key: KeyPath = ("layers", lname, "data_source")
        key += ("init_args", "src_dir") if "class_path" in ds else ("src_dir",)
        # Imagery is rarely in a checkout: only the run needs it (validate warns).
        severity = "error" if project.for_run else "warning"
        unset = unset_env_vars(src)
        if unset:
            out.append(
                ddoc.diag(
                    f"src_dir {src!r} names environment variable(s) {unset} that are not set",
                    key,
                    hint="set them where the run happens (rslearn reads an unset one as '')",
                    rule="local_files",
                    severity=severity,
                )
            )
            continue
        if not src_dir.is_dir():
            out.append(
                ddoc.diag(
                    f"src_dir {src!r} is not a directory ({src_dir})",
                    key,
                    hint="relative paths are relative to the project directory",
                    rule="local_files",
                    severity=severity,
                )
            )
            continue
        if layer.get("type") != "raster":
            continue
        specs = args.get("raster_item_specs")
        if specs:
            out += _check_item_specs(ddoc, lname, layer, specs, src_dir, severity)
            continue
        files = sorted(
            p for p in src_dir.rglob("*.*") if p.is_file() and not p.name.endswith(".json")
        )[:MAX_FILES_OPENED]
        if not files:
            out.append(ddoc.diag(f"src_dir {src!r} holds no files", key, rule="local_files"))
            continue
        n, err = _band_count(files)
        if err or n is None:
            out.append(ddoc.diag(f"src_dir {src!r}: {err}", key, rule="local_files"))
            continue
        out += _unknown_bands(
            ddoc,
            lname,
            layer,
            {f"B{i + 1}" for i in range(n)},
            f"are not produced by LocalFiles: the files in {src!r} have {n} band(s), "
            f"named B1..B{n}",
            "LocalFiles names bands B1..Bn in file order; rename the bands",
        )
    return out
