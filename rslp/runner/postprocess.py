"""Postprocess step (window then partition stage) and combine step (dataset stage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rslp.common.partitioners.interface import WindowSpec
from rslp.common.postprocessing.interface import VectorFeature, WindowResult
from rslp.errors import StepError
from rslp.fsutil import fresh_dir, publish_dir
from rslp.request import RequestFeature, load_request
from rslp.runner.context import RunContext
from rslp.runner.dataset import open_dataset
from rslp.runner.partition import partition_windows

WINDOW_DIR = "windows"
PARTITION_DIR = "partition"


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


def postprocess(
    ctx: RunContext, partition_id: str, on_windows: Callable[[int], None] | None = None
) -> list[Path]:
    """Run the window stage on every window, then the partition stage.

    ``on_windows`` is called with 1 as each window's stage finishes (progress).

    Outputs go to ``partitions/<id>/windows/`` and ``partitions/<id>/partition/``; each
    directory is built under a staging name and renamed into place when complete.

    Returns:
        the partition-stage outputs.
    """
    layer = ctx.output_layer
    specs = {s.name: s for s in partition_windows(ctx, partition_id)}
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
    base = ctx.scratch.partition_dir(partition_id)

    win_final = base / WINDOW_DIR
    staging = fresh_dir(win_final)
    window_outputs: list[Path] = []
    for w in windows:
        if not w.is_layer_completed(layer.name):
            raise StepError(
                "postprocess", f"window {w.name} has no output: run inference first", partition_id
            )
        result = _read_window(ctx, w, specs[w.name], requests, layer_cfg)
        window_outputs += window_stage.process_window(result, layer, staging)
        if on_windows is not None:
            on_windows(1)
    publish_dir(staging, win_final)
    window_outputs = _relocate(window_outputs, staging, win_final)

    part_final = base / PARTITION_DIR
    staging = fresh_dir(part_final)
    outs = partition_stage.process_partition(window_outputs, layer, staging, partition_id)
    publish_dir(staging, part_final)
    return _relocate(outs, staging, part_final)


def combine(ctx: RunContext, partition_ids: list[str]) -> list[Path]:
    """Dataset stage: combine the partitions' artifacts into ``results/``.

    Returns:
        the final artifacts.
    """
    inputs: list[Path] = []
    for pid in sorted(partition_ids):
        d = ctx.scratch.partition_dir(pid) / PARTITION_DIR
        if not d.is_dir():
            raise StepError("combine", "no partition-stage output: run postprocess first", pid)
        inputs += sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not inputs:
        raise StepError("combine", "the partitions produced no artifacts")
    final = ctx.scratch.results
    staging = fresh_dir(final)
    outs = ctx.postprocessor("strategy_large").process_dataset(inputs, ctx.output_layer, staging)
    publish_dir(staging, final)
    return _relocate(outs, staging, final)
