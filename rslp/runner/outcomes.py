"""Window outcomes: after the dataset step every planned window is ready or rejected.

A window is *rejected* when a layer with a data source did not materialize for it: no
item covers it at its time (``no_items``), items matched but nothing was written
(``not_materialized``), or the data source kept failing transiently after every retry
(``source_failed``). Rejected windows are skipped by inference and postprocessing (the
map has nodata there); a rerun retries only their dataset work.

The dataset step writes ``outcomes/<partition>.json`` (its rejected windows, with the
layer and reason of each); the manifest holds the counts. The run compares ready /
planned windows with its floor (``min_window_success_rate``) and lists the rejected
windows in ``results/rejected_windows.geojson``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rslp.errors import RunnerError
from rslp.fsutil import write_json_atomic
from rslp.runner.scratch import Scratch

OUTCOMES_DIR = "outcomes"
REJECTED_GEOJSON = "rejected_windows.geojson"
REASONS = {
    "no_items": "no item covers the window at its time",
    "not_materialized": "items matched but nothing was materialized",
    "source_failed": "the data source failed after every retry",
}


@dataclass
class Rejection:
    """A rejected window: which layer did not materialize, and why.

    Attributes:
        name: the window name.
        layer: the dataset.json layer.
        reason: a key of :data:`REASONS`.
        detail: the error, for ``source_failed``.
        feature_ids: the request features that need the window.
    """

    name: str
    layer: str
    reason: str
    detail: str = ""
    feature_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As stored in ``outcomes/<partition>.json``."""
        return {
            "name": self.name,
            "layer": self.layer,
            "reason": self.reason,
            "detail": self.detail,
            "feature_ids": list(self.feature_ids),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Rejection:
        """From :meth:`to_json`'s output."""
        return Rejection(
            d["name"], d["layer"], d["reason"], d.get("detail", ""), list(d.get("feature_ids", []))
        )


@dataclass
class PartitionOutcome:
    """What the dataset step left for one partition.

    Attributes:
        partition_id: the partition.
        windows: its planned windows.
        rejected: the rejected ones.
    """

    partition_id: str
    windows: int
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ready(self) -> int:
        """Windows whose every layer materialized."""
        return self.windows - len(self.rejected)

    def counts(self) -> dict[str, int]:
        """``{"windows", "ready", "rejected"}``: the dataset step's result in the manifest."""
        return {"windows": self.windows, "ready": self.ready, "rejected": len(self.rejected)}


def outcome_path(scratch: Scratch, partition_id: str) -> Path:
    """``outcomes/<partition>.json``."""
    return scratch.root / OUTCOMES_DIR / f"{partition_id}.json"


def write_outcome(scratch: Scratch, outcome: PartitionOutcome) -> None:
    """Write a partition's outcome (atomically)."""
    write_json_atomic(
        outcome_path(scratch, outcome.partition_id),
        {
            "partition_id": outcome.partition_id,
            "windows": outcome.windows,
            "rejected": [r.to_json() for r in outcome.rejected],
        },
    )


def read_outcome(scratch: Scratch, partition_id: str) -> PartitionOutcome | None:
    """A partition's outcome, or None before its dataset step finished."""
    path = outcome_path(scratch, partition_id)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return PartitionOutcome(
        d["partition_id"], int(d["windows"]), [Rejection.from_json(r) for r in d["rejected"]]
    )


def clear_outcome(scratch: Scratch, partition_id: str) -> None:
    """Forget a partition's outcome (its dataset step is reset)."""
    outcome_path(scratch, partition_id).unlink(missing_ok=True)


def rejected_names(scratch: Scratch, partition_id: str) -> set[str]:
    """The names of a partition's rejected windows (none before its dataset step)."""
    outcome = read_outcome(scratch, partition_id)
    return {r.name for r in outcome.rejected} if outcome else set()


@dataclass
class RunOutcome:
    """Ready and rejected windows over a run's partitions.

    Attributes:
        planned: planned windows.
        rejected: rejected windows (kept as the partitions are added).
        partitions: partition id -> its outcome, for those whose dataset step is done.
    """

    planned: int
    rejected: int = 0
    partitions: dict[str, PartitionOutcome] = field(default_factory=dict)

    def rejections(self) -> Iterator[tuple[str, Rejection]]:
        """(partition id, rejected window) over the run."""
        for pid, outcome in self.partitions.items():
            for r in outcome.rejected:
                yield pid, r

    @property
    def reasons(self) -> Counter[tuple[str, str]]:
        """(layer, reason) -> rejected windows, over the run."""
        return Counter((r.layer, r.reason) for _, r in self.rejections())

    @property
    def ready(self) -> int:
        """Planned windows not rejected (counting those not built yet)."""
        return self.planned - self.rejected

    @property
    def rate(self) -> float:
        """Ready / planned (1 for an empty plan)."""
        return self.ready / self.planned if self.planned else 1.0

    def below(self, floor: float) -> bool:
        """Whether the rate is below ``floor`` (and so can only stay there)."""
        return self.planned > 0 and self.ready < floor * self.planned - 1e-9

    def add(self, outcome: PartitionOutcome) -> None:
        """Count a partition's outcome (replacing what was counted for it)."""
        old = self.partitions.get(outcome.partition_id)
        if old is not None:
            self.rejected -= len(old.rejected)
        self.partitions[outcome.partition_id] = outcome
        self.rejected += len(outcome.rejected)

    def dominant(self) -> str:
        """The most frequent layer and reason, in words (with an error, where one was kept)."""
        reasons = self.reasons
        if not reasons:
            return "none"
        (layer, reason), n = reasons.most_common(1)[0]
        text = f"layer {layer!r}: {REASONS.get(reason, reason)} ({n} window(s))"
        details = (r.detail for _, r in self.rejections() if (r.layer, r.reason) == (layer, reason))
        detail = next((d for d in details if d), "")
        return f"{text}: {detail[:300]}" if detail else text

    def summary(self, floor: float) -> str:
        """One line for the end of a run."""
        return (
            f"windows: {self.ready} ready, {self.rejected} rejected of {self.planned} planned "
            f"({self.rate:.1%}; min_window_success_rate {floor:g})"
        )


def collect(scratch: Scratch, windows: dict[str, int]) -> RunOutcome:
    """The outcome of the given partitions (id -> planned windows) from their files."""
    run = RunOutcome(planned=sum(windows.values()))
    scratch.fetch_files([outcome_path(scratch, p) for p in windows])  # a bucket's truth
    for pid in windows:
        outcome = read_outcome(scratch, pid)
        if outcome is not None:
            run.add(outcome)
    return run


def rejection_properties(r: Rejection) -> dict[str, Any]:
    """A rejected window's layer and reason as GeoJSON properties (in words too)."""
    return {
        "layer": r.layer,
        "reason": r.reason,
        "why": REASONS.get(r.reason, r.reason),
        "detail": r.detail,
    }


def write_rejected_geojson(ctx: Any, run: RunOutcome, path: Path) -> int:
    """Write the rejected windows of a run's outcome as lon/lat GeoJSON to ``path``.

    One feature per rejected window: its footprint, partition, name, request feature
    ids, layer, reason and detail. Removes ``path`` when there is none.

    Returns:
        the number of rejected windows written.
    """
    from rslp.runner.partition import partition_windows
    from rslp.runner.preview import write_windows_geojson

    by_pid: dict[str, dict[str, Rejection]] = {}
    for pid, r in run.rejections():
        by_pid.setdefault(pid, {})[r.name] = r
    if not by_pid:
        if path.exists():
            os.unlink(path)
        return 0

    def windows() -> Iterator[tuple[str, Any]]:
        for pid, rejected in by_pid.items():
            for spec in partition_windows(ctx, pid):
                if spec.name in rejected:
                    yield pid, spec

    write_windows_geojson(
        path, windows(), lambda pid, spec: rejection_properties(by_pid[pid][spec.name])
    )
    return run.rejected


class WindowFloorError(RunnerError):
    """Too few windows are ready: the run's success rate is below its floor.

    Args:
        run: the run's outcome.
        floor: the floor.
        source: where the floor was set (file and key, or the option).
        listing: the rejected windows' GeoJSON.
        final: whether every partition's dataset step had finished.
        hint: what to check (default: generic words).
    """

    def __init__(
        self,
        run: RunOutcome,
        floor: float,
        source: str,
        listing: Path,
        final: bool,
        hint: str = "check the request against the imagery's extent and dates",
    ) -> None:
        self._init_args = (run, floor, source, listing, final, hint)
        self.run = run
        self.floor = floor
        if final:
            what = (
                f"window success rate {run.rate:.1%} ({run.ready} of {run.planned} windows ready)"
            )
        else:
            what = (
                f"at most {run.rate:.1%} of the {run.planned} planned windows can be ready "
                f"({run.rejected} rejected so far; stopped early)"
            )
        super().__init__(
            f"{what} is below min_window_success_rate {floor:g} ({source}); most rejected: "
            f"{run.dominant()}; the rejected windows are listed in {listing} (hint: {hint}; "
            "or lower the floor; a rerun retries only the rejected windows)"
        )
