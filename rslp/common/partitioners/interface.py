"""The partitioner contract.

A partitioner works at one of two levels of ``partition_strategies.yaml``:

- ``strategy_large`` calls :meth:`PartitionInterface.partition_request`: the request's
  features become *partitions*, each an rslearn window group and one unit of compute.
- ``strategy_small`` calls :meth:`PartitionInterface.partition_windows`: one partition
  becomes rslearn *windows* (a projection, integer pixel bounds and a time range).

Ready-made partitioners (each implements both levels):

- :class:`~rslp.common.partitioners.noop.NoopPartitioner`: no splitting. Use it to run a
  whole request as one partition, or one window per feature on its bounds.
- :class:`~rslp.common.partitioners.fixed_window.FixedWindowPartitioner`: one partition per
  feature, or one window of ``window_size`` pixels centred on each feature. Use it for
  point-like requests and for a quick debug run (``limit: 1``).
- :class:`~rslp.common.partitioners.grid.GridPartitioner`: a grid of ``grid_size`` degrees
  (large level) or ``grid_size`` pixels (small level). Use it for area requests: windows
  tile the geometry itself, and a window belongs to exactly one partition.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rslp.common.partitioners.projection import PixelBounds, PixelGrid, crs_tag, utm_crs_for
from rslp.request import RequestFeature


@dataclass(frozen=True)
class OutputProjection:
    """Where windows live: an explicit CRS, or each feature's UTM zone when ``crs`` is None."""

    crs: str | None = None
    resolution: float = 10.0

    def grid_for(self, feature: RequestFeature) -> PixelGrid:
        """The pixel grid for a feature's windows."""
        if self.crs is not None:
            return PixelGrid(self.crs, self.resolution)
        c = feature.geometry.centroid
        return PixelGrid(utm_crs_for(c.x, c.y), self.resolution)


@dataclass
class Partition:
    """A large partition: one rslearn window group.

    Attributes:
        id: deterministic, path-safe id (also the rslearn group name).
        features: the request features this partition covers.
        cell: for grid partitions, ``(grid_size_degrees, ix, iy)``: the partition owns
            exactly the windows whose centre lies in that lon/lat cell (half-open).
    """

    id: str
    features: list[RequestFeature]
    cell: tuple[float, int, int] | None = None

    def owns(self, lon: float, lat: float) -> bool:
        """Whether a window centred at ``lon``/``lat`` belongs to this partition."""
        if self.cell is None:
            return True
        size, ix, iy = self.cell
        return math.floor(lon / size) == ix and math.floor(lat / size) == iy


@dataclass
class WindowSpec:
    """A small partition: one rslearn window.

    Attributes:
        name: deterministic, path-safe window name.
        crs: the window's CRS.
        resolution: CRS units per pixel.
        bounds: pixel bounds ``(col0, row0, col1, row1)``.
        time_range: the feature's time range.
        feature_ids: ids of the request features that need this window.
    """

    name: str
    crs: str
    resolution: float
    bounds: PixelBounds
    time_range: tuple[datetime, datetime]
    feature_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Serialize to a JSON-compatible dict."""
        return {
            "name": self.name,
            "crs": self.crs,
            "resolution": self.resolution,
            "bounds": list(self.bounds),
            "time_range": [t.isoformat() for t in self.time_range],
            "feature_ids": list(self.feature_ids),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> WindowSpec:
        """Deserialize from :meth:`to_json` output."""
        b = d["bounds"]
        t = d["time_range"]
        return WindowSpec(
            name=d["name"],
            crs=d["crs"],
            resolution=float(d["resolution"]),
            bounds=(int(b[0]), int(b[1]), int(b[2]), int(b[3])),
            time_range=(datetime.fromisoformat(t[0]), datetime.fromisoformat(t[1])),
            feature_ids=list(d["feature_ids"]),
        )


def make_window(grid: PixelGrid, bounds: PixelBounds, feature: RequestFeature) -> WindowSpec:
    """Build a window whose name is derived from its content (CRS, bounds, time)."""
    t0, t1 = feature.time_range
    th = hashlib.sha256(f"{t0.isoformat()}|{t1.isoformat()}".encode()).hexdigest()[:8]
    res = f"{grid.resolution:g}".replace(".", "p")
    name = f"{crs_tag(grid.crs)}_{res}_{bounds[0]}_{bounds[1]}_{bounds[2]}_{bounds[3]}_{th}"
    return WindowSpec(name, grid.crs, grid.resolution, bounds, feature.time_range, [feature.id])


class PartitionInterface(ABC):
    """Splits a request into partitions (large level) and partitions into windows (small)."""

    @abstractmethod
    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """Split the request's features into partitions.

        Args:
            features: the request's features (WGS84), in file order.

        Returns:
            partitions with unique, deterministic, path-safe ids.
        """

    @abstractmethod
    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> list[WindowSpec]:
        """Split one partition into windows.

        Args:
            partition: a partition made by the large-level strategy.
            projection: where windows live (explicit CRS or each feature's UTM zone).

        Returns:
            windows; the same window needed by several features may appear more than
            once (the runner merges them by name). Windows whose centre the partition
            does not own (:meth:`Partition.owns`) must be left out.
        """


def owned(partition: Partition, grid: PixelGrid, bounds: PixelBounds) -> bool:
    """Whether ``partition`` owns the window with ``bounds`` on ``grid``."""
    if partition.cell is None:
        return True
    lon, lat = grid.pixel_to_lonlat((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    return partition.owns(lon, lat)


def request_digest(features: list[RequestFeature]) -> str:
    """A short content hash of a list of features (ids, geometries, times)."""
    h = hashlib.sha256()
    for f in features:
        h.update(f.id.encode())
        h.update(f.geometry.wkb)
        h.update(f"{f.time_range[0].isoformat()}|{f.time_range[1].isoformat()}".encode())
    return h.hexdigest()[:10]


def apply_limit(windows: list[WindowSpec], limit: int | None) -> list[WindowSpec]:
    """Keep at most ``limit`` windows, chosen deterministically (sorted by name)."""
    if limit is None:
        return windows
    return sorted(windows, key=lambda w: w.name)[:limit]
