"""Partition step: request -> partitions -> windows, streamed to ``plan/``.

``plan/index.json`` lists the partitions (id, feature ids, window count) and
``plan/windows/<id>.jsonl`` holds one window per line. Windows are generated one
partition at a time and written as they come, so a country-sized request never sits in
memory at once; the directory is built under a staging name and renamed into place.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from rslp.common.partitioners.interface import OutputProjection, PartitionInterface, WindowSpec
from rslp.common.partitioners.projection import PixelBounds
from rslp.errors import ProjectError, StepError
from rslp.fsutil import fresh_dir, publish_dir, write_json_atomic
from rslp.request import RequestFeature, load_request
from rslp.runner.context import RunContext

INDEX = "index.json"


class PlanWriter:
    """Write windows as ``plan/windows/<id>.jsonl`` lines, and sum each partition up.

    A line holds what ``json.dumps(w.to_json(), separators=(",", ":"))`` gives; the parts
    every window of a feature shares (CRS, resolution, times, feature ids) are encoded once,
    so each of a country's million windows costs one name and four numbers.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[Any, ...], tuple[str, str]] = {}

    def _encode(self, key: tuple[Any, ...], w: WindowSpec) -> tuple[str, str]:
        parts = self._parts.get(key)
        if parts is None:
            times = [t.isoformat() for t in w.time_range]
            tail = json.dumps({"time_range": times, "feature_ids": w.feature_ids}, separators=SEP)
            parts = self._parts[key] = (
                ',"crs":' + json.dumps(w.crs) + ',"resolution":' + json.dumps(w.resolution),
                "]," + tail[1:],
            )
        return parts

    def write(self, path: Path, windows: list[WindowSpec]) -> dict[str, Any]:
        """Write ``windows`` to ``path``; returns their area, time span and pixel extents."""
        seen: dict[tuple[Any, ...], tuple[str, str, list[PixelBounds]]] = {}
        groups: dict[tuple[str, float], list[PixelBounds]] = {}
        lines = []
        for w in windows:
            tr = w.time_range  # equal keys must encode alike: 10 == 10.0, and equal
            # instants in other time zones are equal datetimes
            key = (
                w.crs,
                type(w.resolution),
                w.resolution,
                tr,
                tr[0].tzinfo,
                tr[1].tzinfo,
                *w.feature_ids,
            )
            got = seen.get(key)
            if got is None:
                group = groups.setdefault((w.crs, w.resolution), [])
                got = seen[key] = (*self._encode(key, w), group)
            head, tail, group = got
            b = w.bounds
            group.append(b)
            lines.append(
                f'{{"name":{_quote(w.name)}{head},"bounds":[{b[0]},{b[1]},{b[2]},{b[3]}{tail}\n'
            )
        with path.open("w") as f:
            f.writelines(lines)
        return _summary(groups, {k[3] for k in seen})


SEP = (",", ":")
_quote = json.encoder.encode_basestring_ascii


def _summary(
    groups: dict[tuple[str, float], list[PixelBounds]], times: set[tuple[datetime, datetime]]
) -> dict[str, Any]:
    area = 0.0
    extents = []
    for (crs, res), bounds in sorted(groups.items()):
        flat = itertools.chain.from_iterable(bounds)
        a = np.fromiter(flat, dtype=np.int64, count=4 * len(bounds)).reshape(-1, 4)
        area += float(((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])).sum()) * res * res
        extents.append([crs, res, *a[:, :2].min(axis=0).tolist(), *a[:, 2:].max(axis=0).tolist()])
    return {
        "area_km2": area / 1e6,
        "start": min(t[0] for t in times).isoformat() if times else None,
        "end": max(t[1] for t in times).isoformat() if times else None,
        "extents": extents,
    }


def build_plan(
    features: list[RequestFeature],
    large: PartitionInterface,
    small: PartitionInterface,
    projection: OutputProjection,
    plan_dir: Path,
) -> dict[str, Any]:
    """Compute partitions and stream their windows into ``plan_dir``.

    A window needed by several features is made once: windows are merged by name (their
    name derives from CRS, bounds and time), kept in the first partition in id order that
    produced it, with every feature id recorded.

    Returns:
        the index: ``{"partitions": [{"id", "feature_ids", "num_windows", "area_km2",
        "start", "end", "extents"}, ...]}``; ``extents`` lists ``[crs, resolution, col0,
        row0, col1, row1]``, the pixel bounds of the partition's windows in each CRS.

    Raises:
        ValueError: from a partitioner that cannot handle the request.
    """
    partitions = large.partition_request(features)
    ids = [p.id for p in partitions]
    if len(set(ids)) != len(ids):
        raise StepError("partition", f"strategy_large produced duplicate partition ids: {ids}")
    owner: dict[str, str] = {}
    late_ids: dict[str, dict[str, list[str]]] = {}
    index = []
    writer = PlanWriter()
    (plan_dir / "windows").mkdir(parents=True, exist_ok=True)
    claim = owner.setdefault
    for part in sorted(partitions, key=lambda p: p.id):
        mine: dict[str, WindowSpec] = {}
        pid = part.id
        for w in small.partition_windows(part, projection):
            name = w.name
            first = claim(name, pid)
            if first != pid:  # an earlier partition has it
                extra = late_ids.setdefault(first, {}).setdefault(name, [])
                extra.extend(f for f in w.feature_ids if f not in extra)
            elif name in mine:
                ids_ = mine[name].feature_ids
                ids_.extend(f for f in w.feature_ids if f not in ids_)
            else:
                mine[name] = w
        if not mine:
            continue
        summary = writer.write(
            plan_dir / "windows" / f"{part.id}.jsonl", [mine[n] for n in sorted(mine)]
        )
        index.append(
            {
                "id": part.id,
                "feature_ids": [f.id for f in part.features],
                "num_windows": len(mine),
                **summary,
            }
        )
    for pid, extras in late_ids.items():  # windows another partition also needed
        path = plan_dir / "windows" / f"{pid}.jsonl"
        specs = [WindowSpec.from_json(json.loads(line)) for line in path.read_text().splitlines()]
        for w in specs:
            w.feature_ids.extend(f for f in extras.get(w.name, []) if f not in w.feature_ids)
        writer.write(path, specs)
    result = {"partitions": index}
    write_json_atomic(plan_dir / INDEX, result)
    return result


def write_plan(ctx: RunContext, plan_dir: Path) -> dict[str, Any]:
    """:func:`build_plan` for a project, with partitioner errors naming the config file."""
    features = load_request(ctx.files.request_geojson)
    large, small = ctx.large_partitioner, ctx.small_partitioner
    try:
        return build_plan(features, large, small, ctx.projection, plan_dir)
    except ValueError as e:
        raise ProjectError(
            ctx.files.partition_strategies_yaml, str(e), "strategy_large/small"
        ) from e


def run_partition(ctx: RunContext) -> list[str]:
    """Plan partitions into ``plan/`` atomically and return the partition ids."""
    staging = fresh_dir(ctx.scratch.plan_dir)
    index = write_plan(ctx, staging)
    publish_dir(staging, ctx.scratch.plan_dir)
    return [p["id"] for p in index["partitions"]]


def load_plan(ctx: RunContext) -> dict[str, Any]:
    """Read the plan index, computing the plan first when it does not exist yet."""
    path = ctx.scratch.plan_dir / INDEX
    if not path.exists():
        run_partition(ctx)
    return dict(json.loads(path.read_text()))


def partition_windows(ctx: RunContext, partition_id: str) -> list[WindowSpec]:
    """The planned windows of one partition."""
    path = ctx.scratch.plan_dir / "windows" / f"{partition_id}.jsonl"
    if "/" in partition_id or not path.is_file():  # the index is only read when needed
        known = [p["id"] for p in load_plan(ctx)["partitions"]]
        if partition_id not in known:
            shown = known[:10] + (["..."] if len(known) > 10 else [])
            raise StepError("partition", f"unknown partition id {partition_id!r}; known: {shown}")
    return [WindowSpec.from_json(json.loads(line)) for line in path.read_text().splitlines()]
