"""A table of partitions x steps from the manifest: what ``esrunner status`` prints."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rslp.runner.engine import PARTITION_STEPS
from rslp.runner.outcomes import REJECTED_GEOJSON
from rslp.runner.scratch import Scratch


def _cell(rec: dict[str, Any]) -> str:
    state = rec.get("state", "-")
    if "start" in rec and "end" in rec and state in ("done", "failed"):
        secs = (
            datetime.fromisoformat(rec["end"]) - datetime.fromisoformat(rec["start"])
        ).total_seconds()
        return f"{state} {secs:.1f}s"
    return state


def _counts(rec: dict[str, Any]) -> tuple[int, int] | None:
    """(ready, rejected) windows of a finished dataset step, else None."""
    result = rec.get("result")
    if rec.get("state") != "done":
        return None
    if isinstance(result, dict) and "ready" in result:
        return int(result["ready"]), int(result["rejected"])
    return (int(result), 0) if isinstance(result, int) else None


def status_table(scratch: Scratch) -> str:
    """Partitions x steps with states and durations, plus the partition and combine steps."""
    manifest = scratch.read_manifest()
    scratch.fetch(scratch.plan_dir)  # a bucket's plan (no-op on disk)
    index = scratch.plan_dir / "index.json"
    plan = json.loads(index.read_text())["partitions"] if index.exists() else []
    parts = manifest.get("partitions", {})
    rows: list[tuple[str, ...]] = [("partition", "windows", "ready", "rejected", *PARTITION_STEPS)]
    total = [0, 0, 0]
    for p in plan:
        rec = parts.get(p["id"], {})
        counts = _counts(rec.get("dataset", {}))
        total[0] += p["num_windows"]
        if counts is not None:
            total[1] += counts[0]
            total[2] += counts[1]
        rows.append(
            (
                p["id"],
                str(p["num_windows"]),
                *((str(counts[0]), str(counts[1])) if counts else ("-", "-")),
                *(_cell(rec.get(s, {})) for s in PARTITION_STEPS),
            )
        )
    rows.append(("total", *(str(n) for n in total), *("" for _ in PARTITION_STEPS)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    listing = scratch.results / REJECTED_GEOJSON
    if total[2] and scratch.exists(listing):
        lines.append(f"rejected windows: {scratch.where(listing)}")
    lines.append(f"partition step: {manifest.get('partition_step', {}).get('state', '-')}")
    combine = manifest.get("combine_step", {})
    lines.append(f"combine step:   {combine.get('state', '-')}")
    for r in manifest.get("results", []):
        lines.append(f"result: {r}")
    return "\n".join(lines)
