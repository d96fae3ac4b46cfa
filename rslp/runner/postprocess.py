"""Postprocess step (window then partition stage) and combine step (dataset stage)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rslp.common.partitioners.interface import WindowSpec
from rslp.common.postprocessing.interface import VectorFeature, WindowResult
from rslp.errors import StepError
from rslp.fsutil import fresh_dir, publish_dir, sha256_file, write_json_atomic
from rslp.rasterenv import raster_env
from rslp.request import RequestFeature, load_request
from rslp.runner.context import RunContext
from rslp.runner.dataset import open_dataset
from rslp.runner.outcomes import REJECTED_GEOJSON, rejected_names
from rslp.runner.partition import partition_windows

WINDOW_DIR = "windows"
PARTITION_DIR = "partition"
WINDOW_INDEX = ".index.json"  # window -> its output layer's stamp and its outputs


def _read_window(
    ctx: RunContext, w: Any, spec: WindowSpec, requests: dict[str, RequestFeature], cfg: Any
) -> WindowResult:
    """One window's output, read with ``cfg`` (rslearn's LayerConfig of the output layer)."""
    from rasterio.enums import Resampling

    layer = ctx.output_layer
    result = WindowResult(
        partition_id=w.group,
        name=w.name,
        crs=spec.crs,
        resolution=spec.resolution,
        bounds=tuple(w.bounds),
        time_range=w.time_range,
        feature_ids=list(spec.feature_ids),
        request_features=[requests[f] for f in spec.feature_ids if f in requests],
    )
    if layer.type == "raster":
        bs = cfg.band_sets[0]
        arr = w.data.read_raster(
            layer.name, bs.bands, bs.instantiate_raster_format(), resampling=Resampling.nearest
        )
        result.raster = arr.array[:, 0, :, :]
    else:
        feats = w.data.read_vector(layer.name, cfg.instantiate_vector_format())
        result.vector = [
            VectorFeature(f.to_projection(w.projection).geometry.shp, dict(f.properties))
            for f in feats
        ]
    return result


def _relocate(paths: list[Path], staging: Path, final: Path) -> list[Path]:
    return [final / p.relative_to(staging) for p in paths]


def _stamp(w: Any, layer: str) -> int:
    """When a window's output layer was last completed (rslearn touches its marker)."""
    return int(os.stat(str(w.get_layer_dir(layer) / "completed")).st_mtime_ns)


def _previous(win_final: Path, config_hash: str) -> dict[str, Any]:
    """The window stage's index of a previous postprocess, when made with this config."""
    try:
        index = json.loads((win_final / WINDOW_INDEX).read_text())
    except (OSError, ValueError):
        return {}
    return dict(index["windows"]) if index.get("config") == config_hash else {}


def _reuse(win_final: Path, staging: Path, outputs: list[str]) -> list[Path] | None:
    """Hard-link a window's earlier outputs into staging (None when one is gone)."""
    if not all((win_final / rel).is_file() for rel in outputs):
        return None
    paths = []
    for rel in outputs:
        dst = staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(win_final / rel, dst)
        paths.append(dst)
    return paths


def postprocess(
    ctx: RunContext, partition_id: str, on_windows: Callable[[int], None] | None = None
) -> list[Path]:
    """Run the window stage on every ready window, then the partition stage.

    Rejected windows (no imagery) are left out, so the map has nodata there. The window
    stage is incremental: a window whose output layer has not changed since the last
    postprocess with the same config keeps its outputs (a rerun that filled gaps
    processes only the new windows); the partition stage always runs again.

    ``on_windows`` is called with 1 as each window's stage finishes (progress).

    Outputs go to ``partitions/<id>/windows/`` and ``partitions/<id>/partition/``; each
    directory is built under a staging name and renamed into place when complete.

    Returns:
        the partition-stage outputs (none when every window was rejected).
    """
    layer = ctx.output_layer
    rejected = rejected_names(ctx.scratch, partition_id)
    specs = {s.name: s for s in partition_windows(ctx, partition_id) if s.name not in rejected}
    base = ctx.scratch.partition_dir(partition_id)
    windows: list[Any] = []
    if specs:
        dataset = open_dataset(ctx)
        windows = sorted(
            dataset.load_windows(groups=[partition_id], names=sorted(specs)), key=lambda w: w.name
        )
        if not windows:
            raise StepError(
                "postprocess", "no windows in the dataset: run build_dataset first", partition_id
            )
    from rslearn.config import LayerConfig

    layer_cfg = LayerConfig.model_validate(ctx.dataset_config["layers"][layer.name])
    requests = {f.id: f for f in load_request(ctx.files.request_geojson)}
    window_stage = ctx.postprocessor("strategy_small")
    partition_stage = ctx.postprocessor("strategy_medium")
    config_hash = sha256_file(ctx.files.postprocessing_strategies_yaml)

    win_final = base / WINDOW_DIR
    before = _previous(win_final, config_hash)
    staging = fresh_dir(win_final)
    window_outputs: list[Path] = []
    index: dict[str, Any] = {}
    for w in windows:
        if not w.is_layer_completed(layer.name):
            raise StepError(
                "postprocess", f"window {w.name} has no output: run inference first", partition_id
            )
        stamp = _stamp(w, layer.name)
        old = before.get(w.name)
        outs = None
        if old is not None and old.get("stamp") == stamp:
            outs = _reuse(win_final, staging, old["outputs"])
        if outs is None:
            result = _read_window(ctx, w, specs[w.name], requests, layer_cfg)
            outs = window_stage.process_window(result, layer, staging)
        index[w.name] = {"stamp": stamp, "outputs": [str(p.relative_to(staging)) for p in outs]}
        window_outputs += outs
        if on_windows is not None:
            on_windows(1)
    write_json_atomic(staging / WINDOW_INDEX, {"config": config_hash, "windows": index})
    publish_dir(staging, win_final)
    window_outputs = _relocate(window_outputs, staging, win_final)

    part_final = base / PARTITION_DIR
    staging = fresh_dir(part_final)
    outs = (
        partition_stage.process_partition(window_outputs, layer, staging, partition_id)
        if window_outputs
        else []
    )
    publish_dir(staging, part_final)
    return _relocate(outs, staging, part_final)


def fetch_partitions(ctx: RunContext, partition_ids: list[str]) -> None:
    """Bring the partitions' postprocess outputs from the bucket (no-op on local disk).

    A partition whose outputs this machine already holds (the same push) is not fetched.
    """
    scratch = ctx.scratch
    if scratch.remote is None:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: scratch.fetch(scratch.partition_dir(p)), partition_ids))


def combine(ctx: RunContext, partition_ids: list[str]) -> list[Path]:
    """Dataset stage: combine the partitions' artifacts into ``results/``.

    Returns:
        the final artifacts.
    """
    fetch_partitions(ctx, partition_ids)
    inputs: list[Path] = []
    for pid in sorted(partition_ids):
        d = ctx.scratch.partition_dir(pid) / PARTITION_DIR
        if not d.is_dir():
            raise StepError("combine", "no partition-stage output: run postprocess first", pid)
        inputs += sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not inputs:
        raise StepError(
            "combine",
            "the partitions produced no artifacts (every window was rejected: see "
            f"{ctx.scratch.results / REJECTED_GEOJSON})",
        )
    final = ctx.scratch.results
    staging = fresh_dir(final)
    with raster_env():
        large = ctx.postprocessor("strategy_large")
        outs = large.process_dataset(inputs, ctx.output_layer, staging)
    publish_dir(staging, final)
    return _relocate(outs, staging, final)
