"""Samplers: which annotation tasks a fine-tune uses.

- :class:`NoopSampler`: every task (the default).
- :class:`ChooseNSampler`: ``n`` tasks chosen at random, with a seed (a quick run).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod

from rslp.finetune.annotations import AnnotationTask


class SamplerInterface(ABC):
    """Chooses annotation tasks from all of them (class balance, a subset, a region)."""

    @abstractmethod
    def sample(self, tasks: list[AnnotationTask]) -> list[AnnotationTask]:
        """The tasks to use, in a deterministic order."""


class NoopSampler(SamplerInterface):
    """Every task, as given."""

    def sample(self, tasks: list[AnnotationTask]) -> list[AnnotationTask]:
        """All of ``tasks``."""
        return list(tasks)


class ChooseNSampler(SamplerInterface):
    """``n`` tasks chosen at random (all when there are fewer), the same for the same seed.

    Args:
        n: how many tasks.
        seed: the random seed (the reference draws without one; here a rerun gives the
            same tasks).
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        self.n = n
        self.seed = seed

    def sample(self, tasks: list[AnnotationTask]) -> list[AnnotationTask]:
        """``n`` of ``tasks`` in their file order."""
        if len(tasks) <= self.n:
            return list(tasks)
        chosen = set(random.Random(self.seed).sample(range(len(tasks)), self.n))
        return [t for i, t in enumerate(tasks) if i in chosen]
