"""Errors raised by the runner, each naming the file and key that caused it."""

from __future__ import annotations

import re
from pathlib import Path


class RunnerError(Exception):
    """Base class for every error the runner reports to a user.

    Errors pickle with their constructor arguments, so they cross process boundaries
    (worker processes) intact.
    """

    _init_args: tuple[object, ...] = ()

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (type(self), self._init_args or self.args)


class ProjectError(RunnerError):
    """A project file is missing or does not hold what the runner expects.

    Args:
        path: the offending file.
        message: what is wrong.
        key: the key path inside the file (for example ``strategy_small.class_path``).
        hint: an optional suggestion for fixing it.
    """

    def __init__(
        self, path: Path | str, message: str, key: str | None = None, hint: str | None = None
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.message = message
        self.hint = hint
        self._init_args = (path, message, key, hint)
        where = f"{self.path}" + (f": {key}" if key else "")
        text = f"{where}: {message}"
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


class StepError(RunnerError):
    """A pipeline step failed for a partition.

    Args:
        step: the step name (partition, dataset, inference, postprocess, combine).
        message: what went wrong (the same words wherever it happens, so that identical
            failures in several partitions are reported once).
        partition_id: the partition being processed, if any.
        features: the request feature ids it concerns, if any (listed after the message,
            merged when failures are grouped).
    """

    def __init__(
        self,
        step: str,
        message: str,
        partition_id: str | None = None,
        features: tuple[str, ...] = (),
    ) -> None:
        self.step = step
        self.partition_id = partition_id
        self.detail = message
        self.features = tuple(features)
        self._init_args = (step, message, partition_id, self.features)
        where = f"[{step}" + (f" {partition_id}" if partition_id else "") + "]"
        super().__init__(f"{where} {message}" + _feature_list(self.features))


def _feature_list(features: tuple[str, ...] | list[str]) -> str:
    if not features:
        return ""
    shown = ", ".join(features[:10]) + (
        f" and {len(features) - 10} more" if len(features) > 10 else ""
    )
    return f" (request feature(s): {shown})"


def _without_partition(err: RunnerError) -> str:
    """The error's text with its partition id left out, to group identical failures."""
    text = f"[{err.step}] {err.detail}" if isinstance(err, StepError) else str(err)
    return re.sub(r" at 0x[0-9a-f]+", "", text)  # object addresses differ per process


class PartitionsFailedError(RunnerError):
    """Partitions failed; each distinct failure is reported once with the partitions it hit.

    Args:
        failures: (partition id, error) for each failed partition.
    """

    def __init__(self, failures: list[tuple[str, RunnerError]]) -> None:
        self.failures = failures
        self._init_args = (failures,)
        groups: dict[str, list[str]] = {}
        features: dict[str, list[str]] = {}
        self.errors: dict[str, RunnerError] = {}
        for pid, err in failures:
            key = _without_partition(err)
            groups.setdefault(key, []).append(pid)
            self.errors.setdefault(key, err)
            seen = features.setdefault(key, [])
            seen += [f for f in getattr(err, "features", ()) if f not in seen]
        self.groups = groups
        lines = []
        for text, pids in groups.items():
            shown = ", ".join(pids[:10]) + (f" and {len(pids) - 10} more" if len(pids) > 10 else "")
            lines.append(
                f"{text} (in {len(pids)} partition(s): {shown})" + _feature_list(features[text])
            )
        super().__init__(f"{len(failures)} partition(s) failed: " + "\n".join(lines))

    @property
    def bad_input(self) -> bool:
        """Every failure is a bad project file (exit 2), not a failed step (exit 1)."""
        return all(isinstance(e, ProjectError) for e in self.errors.values())
