"""Partition step: request -> partitions -> windows, streamed to ``plan/``.

``plan/index.json`` lists the partitions (id, feature ids, window count) and
``plan/windows/<id>.jsonl`` holds one window per line. Windows are generated one
partition at a time and written as they come, so a country-sized request never sits in
memory at once; the directory is built under a staging name and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rslp.common.partitioners.interface import OutputProjection, PartitionInterface, WindowSpec
from rslp.errors import ProjectError, StepError
from rslp.fsutil import fresh_dir, publish_dir, write_json_atomic
from rslp.request import RequestFeature, load_request
from rslp.runner.context import RunContext

INDEX = "index.json"


def _write_jsonl(path: Path, windows: list[WindowSpec]) -> None:
    with path.open("w") as f:
        for w in windows:
            f.write(json.dumps(w.to_json(), separators=(",", ":")) + "\n")


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
        the index: ``{"partitions": [{"id", "feature_ids", "num_windows"}, ...]}``.

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
    (plan_dir / "windows").mkdir(parents=True, exist_ok=True)
    for part in sorted(partitions, key=lambda p: p.id):
        mine: dict[str, WindowSpec] = {}
        for w in small.partition_windows(part, projection):
            if w.name in mine:
                ids_ = mine[w.name].feature_ids
                ids_.extend(f for f in w.feature_ids if f not in ids_)
            elif w.name in owner:
                extra = late_ids.setdefault(owner[w.name], {}).setdefault(w.name, [])
                extra.extend(f for f in w.feature_ids if f not in extra)
            else:
                owner[w.name] = part.id
                mine[w.name] = w
        if not mine:
            continue
        _write_jsonl(plan_dir / "windows" / f"{part.id}.jsonl", [mine[n] for n in sorted(mine)])
        index.append(
            {"id": part.id, "feature_ids": [f.id for f in part.features], "num_windows": len(mine)}
        )
    for pid, extras in late_ids.items():  # windows another partition also needed
        path = plan_dir / "windows" / f"{pid}.jsonl"
        specs = [WindowSpec.from_json(json.loads(line)) for line in path.read_text().splitlines()]
        for w in specs:
            w.feature_ids.extend(f for f in extras.get(w.name, []) if f not in w.feature_ids)
        _write_jsonl(path, specs)
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
