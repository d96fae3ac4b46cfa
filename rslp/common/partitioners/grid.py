"""GridPartitioner: a lon/lat grid of partitions, a pixel grid of windows."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.interface import (
    FeatureFrame,
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowEstimate,
    WindowSpec,
    apply_limit,
    pixel_bounds,
)
from rslp.common.partitioners.projection import split_antimeridian, unwrap
from rslp.request import RequestFeature

logger = logging.getLogger(__name__)

# Candidate cells are tested in blocks of about this many, to bound memory.
_BLOCK = 200_000


def _fmt(size: float) -> str:
    return f"{size:g}".replace(".", "p").replace("-", "m")


def intersecting_cells(
    geom: BaseGeometry, size: float, grow: float = 0.0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cells ``(ix, iy)`` of a square grid (cell ``size``) that intersect ``geom``.

    Args:
        geom: the geometry.
        size: the cell size.
        grow: also count cells that come within this distance of ``geom``.

    Yields:
        blocks of ``(ix, iy)`` integer arrays, row-major (``iy`` then ``ix``), each
        selected with one vectorised, prepared intersects test.
    """
    if geom.is_empty:
        return
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    ix0, ix1 = math.floor((minx - grow) / size), math.floor((maxx + grow) / size)
    iy0, iy1 = math.floor((miny - grow) / size), math.floor((maxy + grow) / size)
    ixs = np.arange(ix0, ix1 + 1)
    rows_per_block = max(1, _BLOCK // len(ixs))
    for start in range(iy0, iy1 + 1, rows_per_block):
        iys = np.arange(start, min(iy1 + 1, start + rows_per_block))
        mx, my = np.meshgrid(ixs, iys)
        gx, gy = mx.ravel(), my.ravel()
        boxes = shapely.box(
            gx * size - grow, gy * size - grow, (gx + 1) * size + grow, (gy + 1) * size + grow
        )
        hit = shapely.intersects(geom, boxes)
        if hit.any():
            yield gx[hit], gy[hit]


def _clipped(px: BaseGeometry, bounds: np.ndarray) -> np.ndarray:
    """Pixel bounds shrunk to the part of each box ``px`` covers (empty parts dropped)."""
    if not len(bounds):
        return bounds
    parts = shapely.intersection(px, shapely.box(*bounds.T.astype(float)))
    keep = ~shapely.is_empty(parts)
    b = shapely.bounds(parts[keep])
    lo = np.floor(b[:, :2]).astype(np.int64)
    hi = np.maximum(np.ceil(b[:, 2:]).astype(np.int64), lo + 1)
    return np.column_stack([lo, hi])


class GridPartitioner(PartitionInterface):
    """Fixed grids at both levels.

    Large level: ``grid_size`` is in **degrees**; one partition per lon/lat cell that
    intersects a feature (id ``grid<size>_<ix>_<iy>``). A partition owns the windows whose
    centre lies in its cell, so no window is made twice at cell borders, whatever grid the
    windows themselves use.
    Small level: ``grid_size`` is in **pixels**; windows are the cells of a fixed pixel
    grid (aligned to pixel 0 of the CRS) that intersect the feature's geometry itself, not
    only its bounding box. Use it for area requests. ``overlap_size`` grows every window
    by that many pixels on each side (context at window edges; the cell, not the grown
    window, decides which partition owns it); ``clip`` shrinks each window to the part of
    its cell the feature covers.

    Args:
        grid_size: cell size: degrees at the large level, whole pixels at the small level.
        limit: at most this many windows per partition (small level).
        overlap_size: pixels added on each side of every window (small level; ignored,
            with a warning, at the large level, where a window belongs to one partition).
        clip: clip windows to the feature's geometry (small level; ignored at the large
            level, where partitions hold whole features).
        output_projection: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        use_utm: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
    """

    def __init__(
        self,
        grid_size: float,
        limit: int | None = None,
        overlap_size: float | None = None,
        clip: bool = False,
        output_projection: Any = None,
        use_utm: bool = False,
    ) -> None:
        super().__init__(output_projection, use_utm)
        if (
            isinstance(grid_size, bool)
            or not isinstance(grid_size, int | float)
            or not (math.isfinite(grid_size) and grid_size > 0)
        ):
            raise ValueError(f"grid_size must be a positive number, got {grid_size!r}")
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise ValueError(f"limit must be a positive whole number, got {limit!r}")
        overlap = 0.0 if overlap_size is None else overlap_size
        if (
            isinstance(overlap, bool)
            or not isinstance(overlap, int | float)
            or not (math.isfinite(overlap) and overlap >= 0)
        ):
            raise ValueError(f"overlap_size must be a number >= 0, got {overlap_size!r}")
        if not isinstance(clip, bool):
            raise ValueError(f"clip must be true or false, got {clip!r}")
        self.grid_size = grid_size
        self.limit = limit
        self.overlap_size = overlap
        self.clip = clip

    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """One partition per intersected lon/lat cell."""
        if self.overlap_size or self.clip:
            logger.warning(
                "GridPartitioner at the partition level ignores overlap_size and clip: each "
                "window belongs to exactly one partition, whose features stay whole"
            )
        size = float(self.grid_size)
        cells: dict[tuple[int, int], list[RequestFeature]] = {}
        for f in features:
            for gx, gy in intersecting_cells(split_antimeridian(f.geometry), size):
                for ix, iy in zip(gx.tolist(), gy.tolist(), strict=True):
                    cells.setdefault((ix, iy), []).append(f)
        siblings = frozenset(cells)
        return [
            Partition(
                id=f"grid{_fmt(size)}_{ix}_{iy}",
                features=fs,
                cell=(size, ix, iy),
                siblings=siblings,
            )
            for (ix, iy), fs in sorted(cells.items())
        ]

    def estimate_partitions(self, features: list[RequestFeature]) -> int:
        """Cells of each feature's bounding box (both sides of the antimeridian)."""
        size = float(self.grid_size)
        total = 0
        for f in features:
            for part in getattr(split_antimeridian(f.geometry), "geoms", None) or [
                split_antimeridian(f.geometry)
            ]:
                x0, y0, x1, y1 = part.bounds
                nx = math.floor(x1 / size) - math.floor(x0 / size) + 1
                ny = math.floor(y1 / size) - math.floor(y0 / size) + 1
                total += nx * ny
        return total

    def _pixels(self) -> int:
        g = int(self.grid_size)
        if g != self.grid_size:
            raise ValueError(f"small-level grid_size is in whole pixels, got {self.grid_size}")
        return g

    @property
    def _overlap(self) -> int:
        """The overlap in whole pixels (a fraction rounds up: never less context)."""
        return math.ceil(self.overlap_size)

    def estimate_windows(
        self, features: list[RequestFeature], projection: OutputProjection
    ) -> WindowEstimate:
        """Grid cells over each feature's bounding box."""
        g = self._pixels()
        total = 0
        for f in features:
            c0, r0, c1, r1 = pixel_bounds(f, projection)
            total += (math.floor((c1 - 1) / g) - math.floor(c0 / g) + 1) * (
                math.floor((r1 - 1) / g) - math.floor(r0 / g) + 1
            )
        return WindowEstimate(total, g + 2 * self._overlap, "grid_size")

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> Iterator[WindowSpec]:
        """Pixel-grid cells that intersect each feature's geometry."""
        return apply_limit(self._windows(partition, projection, self._pixels()), self.limit)

    def _windows(
        self, partition: Partition, projection: OutputProjection, g: int
    ) -> Iterator[WindowSpec]:
        o = self._overlap
        for feature in partition.features:
            frame = FeatureFrame(feature, projection)
            geom = unwrap(feature.geometry)
            # The owner is within half a diagonal (0.71 windows) of the window's centre, so
            # owned windows lie within 1.42 windows of the cell; 3 leaves room for
            # projection scale error (and the overlap, for clipping).
            region = partition.region((g + 2 * o) * frame.grid.resolution * 3)
            if region is not None:
                geom = shapely.intersection(geom, region)  # only where owned windows can be
            px = frame.pixels(geom)
            for gx, gy in intersecting_cells(px, g):
                cells = np.column_stack([gx * g, gy * g, (gx + 1) * g, (gy + 1) * g])
                mask = frame.owned_mask(partition, cells.astype(float))
                bounds = cells[mask] + np.array([-o, -o, o, o])
                if self.clip:
                    bounds = _clipped(px, bounds)
                yield from frame.windows(bounds)
