"""Data splitters: which windows train, validate and test.

- :class:`SpatialDataSplitter`: whole grid cells go to one split (no leakage between
  neighbouring windows); use it for anything spatially autocorrelated, i.e. imagery.
- :class:`RandomDataSplitter`: each window on its own.

Both are deterministic: a window's split is a hash of its cell (or name), so a rerun, or
a window added later, leaves the other windows where they were.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod

from rslp.finetune.preparers import LabeledWindow

SPLITS = ("train", "val", "test")


def check_proportions(train_prop: float, val_prop: float, test_prop: float) -> None:
    """Proportions are in [0, 1] and sum to 1 (ValueError saying which is wrong)."""
    props = {"train_prop": train_prop, "val_prop": val_prop, "test_prop": test_prop}
    for k, v in props.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise ValueError(f"{k} must be a number in [0, 1], got {v!r}")
    total = train_prop + val_prop + test_prop
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(
            f"train_prop + val_prop + test_prop must be 1, got {total:g} "
            f"({train_prop:g} + {val_prop:g} + {test_prop:g})"
        )


def hash_split(key: str, proportions: tuple[float, float, float]) -> str:
    """``train``, ``val`` or ``test`` for a key: its SHA-256 as a number in [0, 1)."""
    u = int(hashlib.sha256(key.encode()).hexdigest(), 16) / 2**256
    if u < proportions[0]:
        return "train"
    return "val" if u < proportions[0] + proportions[1] else "test"


class DataSplitterInterface(ABC):
    """Assigns each labeled window a split."""

    proportions: tuple[float, float, float] = (1.0, 0.0, 0.0)

    @abstractmethod
    def split(self, window: LabeledWindow) -> str:
        """``train``, ``val`` or ``test``."""


class SpatialDataSplitter(DataSplitterInterface):
    """The split of the ``grid_size``-pixel grid cell holding the window's top-left corner.

    Args:
        train_prop: share of cells for training.
        val_prop: share of cells for validation.
        test_prop: share of cells for testing.
        grid_size: the cell size, in pixels of the window's grid.
    """

    def __init__(
        self, train_prop: float, val_prop: float, test_prop: float, grid_size: int
    ) -> None:
        check_proportions(train_prop, val_prop, test_prop)
        if isinstance(grid_size, bool) or not isinstance(grid_size, int | float) or grid_size <= 0:
            raise ValueError(f"grid_size must be a positive number, got {grid_size!r}")
        self.proportions = (train_prop, val_prop, test_prop)
        self.grid_size = grid_size

    def split(self, window: LabeledWindow) -> str:
        """The hash of (CRS, cell column, cell row)."""
        cx = math.floor(window.bounds[0] / self.grid_size)
        cy = math.floor(window.bounds[1] / self.grid_size)
        return hash_split(f"{window.crs}_{cx}_{cy}", self.proportions)


class RandomDataSplitter(DataSplitterInterface):
    """Each window's split drawn on its own (a hash of the seed and its name).

    Args:
        train_prop: share of windows for training.
        val_prop: share of windows for validation.
        test_prop: share of windows for testing.
        seed: changes every assignment.
    """

    def __init__(
        self, train_prop: float, val_prop: float, test_prop: float, seed: int | None = None
    ) -> None:
        check_proportions(train_prop, val_prop, test_prop)
        self.proportions = (train_prop, val_prop, test_prop)
        self.seed = 0 if seed is None else seed

    def split(self, window: LabeledWindow) -> str:
        """The hash of (seed, window name)."""
        return hash_split(f"{self.seed}_{window.name}", self.proportions)
