"""GridPartitioner: a lon/lat grid of partitions, a pixel grid of windows."""

from __future__ import annotations

import math

import shapely.geometry
from shapely.prepared import prep

from rslp.common.partitioners.interface import (
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowSpec,
    apply_limit,
    make_window,
    owned,
)


def _fmt(size: float) -> str:
    return f"{size:g}".replace(".", "p").replace("-", "m")


class GridPartitioner(PartitionInterface):
    """Fixed grids at both levels.

    Large level: ``grid_size`` is in **degrees**; one partition per lon/lat cell that
    intersects a feature (id ``grid<size>_<ix>_<iy>``). A partition owns the windows whose
    centre lies in its cell, so no window is made twice at cell borders.
    Small level: ``grid_size`` is in **pixels**; windows are the cells of a fixed pixel
    grid (aligned to pixel 0 of the CRS) that intersect the feature's geometry itself, not
    only its bounding box. Use it for area requests.

    Args:
        grid_size: cell size: degrees at the large level, pixels at the small level.
        limit: at most this many windows per partition (small level).
    """

    def __init__(self, grid_size: float, limit: int | None = None) -> None:
        if grid_size <= 0:
            raise ValueError(f"grid_size must be positive, got {grid_size}")
        self.grid_size = grid_size
        self.limit = limit

    def partition_request(self, features: list) -> list[Partition]:
        """One partition per intersected lon/lat cell."""
        size = float(self.grid_size)
        cells: dict[tuple[int, int], list] = {}
        for f in features:
            minx, miny, maxx, maxy = f.geometry.bounds
            pg = prep(f.geometry)
            for ix in range(math.floor(minx / size), math.floor(maxx / size) + 1):
                for iy in range(math.floor(miny / size), math.floor(maxy / size) + 1):
                    cell = shapely.geometry.box(
                        ix * size, iy * size, (ix + 1) * size, (iy + 1) * size
                    )
                    if pg.intersects(cell):
                        cells.setdefault((ix, iy), []).append(f)
        return [
            Partition(id=f"grid{_fmt(size)}_{ix}_{iy}", features=fs, cell=(size, ix, iy))
            for (ix, iy), fs in sorted(cells.items())
        ]

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> list[WindowSpec]:
        """Pixel-grid cells that intersect each feature's geometry."""
        g = int(self.grid_size)
        if g != self.grid_size:
            raise ValueError(f"small-level grid_size is in pixels and must be whole: {g}")
        out = []
        for feature in partition.features:
            grid = projection.grid_for(feature)
            geom = grid.to_pixels(feature.geometry)
            pg = prep(geom)
            minx, miny, maxx, maxy = geom.bounds
            for ix in range(math.floor(minx / g), math.ceil(maxx / g) + (maxx % g == 0)):
                for iy in range(math.floor(miny / g), math.ceil(maxy / g) + (maxy % g == 0)):
                    bounds = (ix * g, iy * g, (ix + 1) * g, (iy + 1) * g)
                    if not pg.intersects(shapely.geometry.box(*bounds)):
                        continue
                    if owned(partition, grid, bounds):
                        out.append(make_window(grid, bounds, feature))
        return apply_limit(out, self.limit)
