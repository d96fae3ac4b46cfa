"""Rule: the plan's size, known from bounds and sizes before any window is enumerated.

A window over :data:`MAX_WINDOW_SIDE` pixels a side, or a plan over ``max_windows`` windows
(``--max-windows``, default 10 million), is refused naming partition_strategies.yaml and the
key, in well under a second whatever the request (a grid of 1e-9 degrees included).
"""

from __future__ import annotations

from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document, KeyPath
from rslp.checks.project import ProjectDocs
from rslp.common.partitioners.interface import OutputProjection, PartitionInterface
from rslp.errors import ProjectError
from rslp.plugins import instantiate
from rslp.request import load_request

MAX_WINDOW_SIDE = 16_384


def _partitioner(doc: Document, key: str) -> PartitionInterface | None:
    node = doc.data.get(key)
    if not isinstance(node, dict):
        return None
    base: type[Any] = PartitionInterface
    try:
        part: PartitionInterface = instantiate(
            node["class_path"], node.get("init_args"), base, source=doc.path, key=key
        )
    except (ProjectError, KeyError, TypeError):
        return None  # reported by the class_path and semantics rules
    return part


def _arg_key(doc: Document, level: str, arg: str | None) -> KeyPath:
    init = doc.data[level].get("init_args")
    if arg and isinstance(init, dict) and arg in init:
        return (level, "init_args", arg)
    return (level, "class_path")


def check_plan_bounds(project: ProjectDocs) -> list[Diagnostic]:
    """Partitions, windows and window sizes the plan will make are within the limits."""
    doc = project.valid("partition_strategies.yaml")
    if doc is None:
        return []
    large, small = _partitioner(doc, "strategy_large"), _partitioner(doc, "strategy_small")
    if large is None or small is None:
        return []
    proj: Any = doc.data.get("projection") or {}
    projection = small.window_projection(
        OutputProjection(crs=proj.get("crs"), resolution=float(proj.get("resolution", 10)))
    )
    limit = project.max_windows
    out: list[Diagnostic] = []
    for req in project.requests:
        if project.has_errors(req):
            continue
        try:
            features = load_request(req.path)
        except ProjectError as e:  # what the request rule could not see
            out.append(Diagnostic(req.path, e.message, e.key, req.line(()), e.hint, "request"))
            continue
        where = f" for {req.path.name}"
        try:
            partitions = large.estimate_partitions(features)
        except (ValueError, TypeError, OverflowError) as e:
            out.append(doc.diag(str(e), ("strategy_large", "init_args"), rule="plan_bounds"))
            continue
        if partitions is not None and partitions > limit:
            out.append(
                doc.diag(
                    f"strategy_large makes up to {partitions:,} partitions{where}, over the "
                    f"limit of {limit:,} (each partition holds at least one window)",
                    _arg_key(doc, "strategy_large", "grid_size"),
                    hint="use a larger grid_size (degrees at the large level)",
                    rule="plan_bounds",
                )
            )
        try:
            est = small.estimate_windows(features, projection)
        except (ValueError, TypeError, OverflowError) as e:
            out.append(doc.diag(str(e), ("strategy_small", "init_args"), rule="plan_bounds"))
            continue
        if est is None:
            continue
        if est.max_side > MAX_WINDOW_SIDE:
            out.append(
                doc.diag(
                    f"strategy_small makes windows of {est.max_side:,} px a side{where}; the "
                    f"most is {MAX_WINDOW_SIDE:,}",
                    _arg_key(doc, "strategy_small", est.size_arg),
                    hint="use smaller windows (a GridPartitioner tiles large features)",
                    rule="plan_bounds",
                )
            )
        windows = est.windows
        cap = getattr(small, "limit", None)
        if isinstance(cap, int) and partitions is not None:
            windows = min(windows, cap * partitions)
        if windows > limit:
            out.append(
                doc.diag(
                    f"the plan makes up to {windows:,} windows{where}, over the limit of {limit:,}",
                    _arg_key(doc, "strategy_small", est.size_arg),
                    hint="use larger windows, split the request, or raise --max-windows",
                    rule="plan_bounds",
                )
            )
    return out
