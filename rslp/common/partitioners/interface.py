"""The partitioner contract.

A partitioner works at one of two levels of ``partition_strategies.yaml``:

- ``strategy_large`` calls :meth:`PartitionInterface.partition_request`: the request's
  features become *partitions*, each an rslearn window group and one unit of compute.
- ``strategy_small`` calls :meth:`PartitionInterface.partition_windows`: one partition
  becomes rslearn *windows* (a projection, integer pixel bounds and a time range). Windows
  are yielded one by one, so a country-sized request never sits in memory at once.

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
import heapq
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.projection import (
    PixelBounds,
    PixelGrid,
    bounds_of,
    crs_tag,
    lonlat_to_pixels,
    unwrap,
    utm_crs_for,
)
from rslp.common.partitioners.projection_args import check_projection_args
from rslp.request import RequestFeature


@dataclass(frozen=True)
class OutputProjection:
    """Where windows live: an explicit CRS, or each feature's UTM zone when ``crs`` is None."""

    crs: str | None = None
    resolution: float = 10.0

    def grid_for(self, feature: RequestFeature) -> PixelGrid:
        """The pixel grid for a feature's windows (UTM zone of its unwrapped centroid)."""
        if self.crs is not None:
            return PixelGrid(self.crs, self.resolution)
        c = unwrap(feature.geometry).centroid
        return PixelGrid(utm_crs_for(c.x, c.y), self.resolution)


@dataclass
class Partition:
    """A large partition: one rslearn window group.

    Attributes:
        id: deterministic, path-safe id (also the rslearn group name).
        features: the request features this partition covers.
        cell: for grid partitions, ``(grid_size_degrees, ix, iy)``.
        siblings: for grid partitions, every cell of the request (shared by all its
            partitions). A window belongs to the cell containing its centre when that cell
            is a sibling, else to the nearest sibling cell (distance with longitude scaled
            by cos(latitude), ties to the smallest ``(ix, iy)``): a function of the centre
            alone, so exactly one partition owns each window.
    """

    id: str
    features: list[RequestFeature]
    cell: tuple[float, int, int] | None = None
    siblings: frozenset[tuple[int, int]] | None = None

    def owns(self, lon: float, lat: float) -> bool:
        """Whether a window centred at ``lon``/``lat`` belongs to this partition."""
        return bool(self.owns_many(np.array([lon]), np.array([lat]))[0])

    def owns_many(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`owns`: a boolean array."""
        if self.cell is None:
            return np.ones(len(lons), dtype=bool)
        size, ix, iy = self.cell
        cx = np.floor(lons / size).astype(np.int64)
        cy = np.floor(lats / size).astype(np.int64)
        mine = (cx == ix) & (cy == iy)
        if self.siblings is None:
            return mine
        sib = self.siblings
        # Centres in a cell that is not the request's go to the nearest sibling cell.
        for i in np.flatnonzero(~mine):
            if (int(cx[i]), int(cy[i])) not in sib:
                mine[i] = self._nearest_sibling(float(lons[i]), float(lats[i])) == (ix, iy)
        return mine

    def _nearest_sibling(self, lon: float, lat: float) -> tuple[int, int] | None:
        assert self.cell is not None and self.siblings is not None
        size = self.cell[0]
        cx, cy = math.floor(lon / size), math.floor(lat / size)
        scale = max(math.cos(math.radians(lat)), 1e-6)
        best: tuple[float, tuple[int, int]] | None = None
        for k in range(1, 100_000):
            for dx in range(-k, k + 1):
                for dy in range(-k, k + 1):
                    if max(abs(dx), abs(dy)) != k or (cx + dx, cy + dy) not in self.siblings:
                        continue
                    x0, y0 = (cx + dx) * size, (cy + dy) * size
                    ddx = max(x0 - lon, 0.0, lon - (x0 + size)) * scale
                    ddy = max(y0 - lat, 0.0, lat - (y0 + size))
                    cand = (math.hypot(ddx, ddy), (cx + dx, cy + dy))
                    if best is None or cand < best:
                        best = cand
            if best is not None and best[0] < k * size * scale:
                break  # nothing in a farther ring can be nearer
        return None if best is None else best[1]

    def region(self, margin_m: float) -> BaseGeometry | None:
        """The cell grown by ``margin_m`` metres (lon/lat, both wraps), or None.

        Every window whose diagonal is under ``margin_m / 2`` and that this partition
        owns lies inside the region, so candidates can be looked for there only.
        """
        if self.cell is None:
            return None
        size, ix, iy = self.cell
        y0, y1 = iy * size, (iy + 1) * size
        dlat = margin_m / 110_000.0
        coslat = math.cos(math.radians(min(89.9, max(abs(y0), abs(y1)) + dlat)))
        dlon = margin_m / (111_320.0 * coslat)
        if dlon >= 180.0:
            return None
        box = shapely.box(ix * size - dlon, y0 - dlat, (ix + 1) * size + dlon, y1 + dlat)
        return shapely.union(box, shapely.affinity.translate(box, 360.0))


@dataclass(slots=True)
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


class FeatureFrame:
    """One feature on its pixel grid, with what every window of it shares precomputed.

    Args:
        feature: the request feature.
        projection: where its windows live.
    """

    def __init__(self, feature: RequestFeature, projection: OutputProjection) -> None:
        self.feature = feature
        self.grid = projection.grid_for(feature)
        t0, t1 = feature.time_range
        th = hashlib.sha256(f"{t0.isoformat()}|{t1.isoformat()}".encode()).hexdigest()[:8]
        res = f"{self.grid.resolution:g}".replace(".", "p")
        self._prefix = f"{crs_tag(self.grid.crs)}_{res}_"
        self._suffix = f"_{th}"

    def pixels(self, geom: BaseGeometry | None = None) -> BaseGeometry:
        """``geom`` (default the feature's) in this frame's pixel coordinates."""
        return lonlat_to_pixels(self.feature.geometry if geom is None else geom, self.grid)

    def window(self, bounds: PixelBounds) -> WindowSpec:
        """A window whose name derives from its content (CRS, resolution, bounds, time)."""
        b = bounds
        return WindowSpec(
            f"{self._prefix}{b[0]}_{b[1]}_{b[2]}_{b[3]}{self._suffix}",
            self.grid.crs,
            self.grid.resolution,
            b,
            self.feature.time_range,
            [self.feature.id],
        )

    def windows(self, bounds: np.ndarray) -> list[WindowSpec]:
        """:meth:`window` for each row of an N x 4 integer array of pixel bounds."""
        p, s = self._prefix, self._suffix
        crs, res = self.grid.crs, self.grid.resolution
        times, fid = self.feature.time_range, self.feature.id
        return [
            WindowSpec(f"{p}{c0}_{r0}_{c1}_{r1}{s}", crs, res, (c0, r0, c1, r1), times, [fid])
            for c0, r0, c1, r1 in bounds.tolist()
        ]

    def owned_mask(self, partition: Partition, bounds: np.ndarray) -> np.ndarray:
        """Which of ``bounds`` (an N x 4 array of pixel bounds) ``partition`` owns."""
        if partition.cell is None:
            return np.ones(len(bounds), dtype=bool)
        cols = (bounds[:, 0] + bounds[:, 2]) / 2.0
        rows = (bounds[:, 1] + bounds[:, 3]) / 2.0
        lons, lats = self.grid.pixels_to_lonlat(cols, rows)
        return partition.owns_many(lons, lats)

    def owned_windows(
        self, partition: Partition, bounds: list[PixelBounds]
    ) -> Iterator[WindowSpec]:
        """Windows for ``bounds`` that ``partition`` owns."""
        if not bounds:
            return
        mask = self.owned_mask(partition, np.asarray(bounds, dtype=float))
        for b, keep in zip(bounds, mask, strict=True):
            if keep:
                yield self.window(b)


@dataclass(frozen=True)
class WindowEstimate:
    """What a small-level partitioner will make, known from bounds and sizes alone.

    Attributes:
        windows: at most this many windows (an upper bound).
        max_side: the largest window side, in pixels.
        size_arg: the ``init_args`` key that sets the window size, if any (for messages).
    """

    windows: int
    max_side: int
    size_arg: str | None = None


def pixel_bounds(feature: RequestFeature, projection: OutputProjection) -> PixelBounds:
    """The pixel bounds of a feature's bounding box on its grid (nothing enumerated)."""
    frame = FeatureFrame(feature, projection)
    return bounds_of(frame.pixels(shapely.box(*unwrap(feature.geometry).bounds)))


class PartitionInterface(ABC):
    """Splits a request into partitions (large level) and partitions into windows (small).

    Besides the two splitting methods, a partitioner may say how much it will make before
    it makes anything (:meth:`estimate_partitions`, :meth:`estimate_windows`), from bounds
    and sizes alone; the run's preflight refuses a plan that is too large in a second.
    A custom partitioner that does not override them is simply not checked.

    A partitioner may carry the projection its windows live in (the reference runner's
    ``output_projection`` and ``use_utm`` arguments, see
    :mod:`~rslp.common.partitioners.projection_args`); at the window level it overrides the
    project's ``projection`` (:meth:`window_projection`).

    Set ``LEVELS`` to the levels a partitioner supports (``request``: the large level,
    ``windows``: the small level); the checks refuse it at a level it lacks.

    Args:
        output_projection: an rslearn Projection (or its config mapping) for the windows.
        use_utm: put each feature's windows in its UTM zone, at ``output_projection``'s
            resolution (the project's when not given).
    """

    LEVELS: tuple[str, ...] = ("request", "windows")

    def __init__(self, output_projection: Any = None, use_utm: bool = False) -> None:
        self.own_projection = check_projection_args(output_projection, use_utm)

    def window_projection(self, default: OutputProjection) -> OutputProjection:
        """Where this partitioner's windows live: its own projection, else ``default``."""
        own = getattr(self, "own_projection", None)
        if own is None:
            return default
        crs, res = own
        return OutputProjection(crs=crs, resolution=default.resolution if math.isnan(res) else res)

    def estimate_partitions(self, features: list[RequestFeature]) -> int | None:
        """At most how many partitions :meth:`partition_request` makes (None: unknown).

        Must not enumerate: bounds and sizes only, so it is fast for any request.
        """
        return None

    def estimate_windows(
        self, features: list[RequestFeature], projection: OutputProjection
    ) -> WindowEstimate | None:
        """At most how many windows, and how large, the small level makes (None: unknown).

        Must not enumerate. Raises ValueError for arguments the small level rejects.
        """
        return None

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
    ) -> Iterator[WindowSpec]:
        """Split one partition into windows, yielding them one by one.

        Args:
            partition: a partition made by the large-level strategy.
            projection: where windows live (explicit CRS or each feature's UTM zone).

        Yields:
            windows; the same window needed by several features may come more than once
            (the runner merges them by name). Windows whose centre the partition does not
            own (:meth:`Partition.owns`) must be left out.
        """


def request_digest(features: list[RequestFeature]) -> str:
    """A short content hash of a list of features (ids, geometries, times)."""
    h = hashlib.sha256()
    for f in features:
        h.update(f.id.encode())
        h.update(f.geometry.wkb)
        h.update(f"{f.time_range[0].isoformat()}|{f.time_range[1].isoformat()}".encode())
    return h.hexdigest()[:10]


def apply_limit(windows: Iterable[WindowSpec], limit: int | None) -> Iterator[WindowSpec]:
    """At most ``limit`` windows, chosen deterministically (the first by name)."""
    if limit is None:
        yield from windows
    else:
        yield from sorted(
            heapq.nsmallest(limit, windows, key=lambda w: w.name), key=lambda w: w.name
        )
