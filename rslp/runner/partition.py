"""Partition step: request -> partitions -> windows, saved to ``plan.json``."""

from __future__ import annotations

import json
from typing import Any

from rslp.common.partitioners.interface import WindowSpec
from rslp.errors import ProjectError, StepError
from rslp.request import load_request
from rslp.runner.context import RunContext
from rslp.runner.scratch import write_json_atomic


def plan_partitions(ctx: RunContext) -> dict[str, Any]:
    """Compute partitions and their windows.

    A window needed by several features is made once: windows are merged by name (their
    name derives from CRS, bounds and time), keeping the first partition in id order that
    produced it, and recording every feature id.

    Returns:
        ``{"partitions": [{"id": ..., "feature_ids": [...], "windows": [...]}, ...]}``.
    """
    features = load_request(ctx.files.request_geojson)
    large = ctx.large_partitioner
    small = ctx.small_partitioner
    try:
        partitions = large.partition_request(features)
    except ValueError as e:
        raise ProjectError(ctx.files.partition_strategies_yaml, str(e), "strategy_large") from e
    ids = [p.id for p in partitions]
    if len(set(ids)) != len(ids):
        raise StepError("partition", f"strategy_large produced duplicate partition ids: {ids}")
    seen: dict[str, WindowSpec] = {}
    out: list[tuple[str, list[str], list[WindowSpec]]] = []
    for part in sorted(partitions, key=lambda p: p.id):
        try:
            windows = small.partition_windows(part, ctx.projection)
        except ValueError as e:
            raise ProjectError(ctx.files.partition_strategies_yaml, str(e), "strategy_small") from e
        mine: dict[str, WindowSpec] = {}
        for w in windows:
            prior = seen.get(w.name)
            if prior is not None:
                prior.feature_ids.extend(f for f in w.feature_ids if f not in prior.feature_ids)
                continue
            seen[w.name] = w
            mine[w.name] = w
        out.append((part.id, [f.id for f in part.features], [mine[n] for n in sorted(mine)]))
    return {
        "partitions": [
            {"id": pid, "feature_ids": fids, "windows": [w.to_json() for w in ws]}
            for pid, fids, ws in out
            if ws
        ]
    }


def run_partition(ctx: RunContext) -> list[str]:
    """Plan partitions, write ``plan.json`` atomically and return the partition ids."""
    plan = plan_partitions(ctx)
    write_json_atomic(ctx.scratch.plan_path, plan)
    return [p["id"] for p in plan["partitions"]]


def load_plan(ctx: RunContext) -> dict[str, Any]:
    """Read ``plan.json``, computing it first when it does not exist yet."""
    if not ctx.scratch.plan_path.exists():
        run_partition(ctx)
    return dict(json.loads(ctx.scratch.plan_path.read_text()))


def partition_windows(ctx: RunContext, partition_id: str) -> list[WindowSpec]:
    """The planned windows of one partition."""
    for p in load_plan(ctx)["partitions"]:
        if p["id"] == partition_id:
            return [WindowSpec.from_json(w) for w in p["windows"]]
    known = [p["id"] for p in load_plan(ctx)["partitions"]]
    raise StepError("partition", f"unknown partition id {partition_id!r}; known: {known}")
