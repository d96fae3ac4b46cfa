"""FixedWindowPartitioner: one fixed-size window centred on each feature."""

from __future__ import annotations

import math

from rslp.common.partitioners.interface import (
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowSpec,
    apply_limit,
    make_window,
    owned,
)


class FixedWindowPartitioner(PartitionInterface):
    """One unit per feature.

    Large level: one partition per feature (the partition id is the feature id).
    Small level: one ``window_size`` x ``window_size`` pixel window centred on each point,
    or on the centroid of each line or polygon. Use it for point-like requests (sites,
    fields) and, with ``limit: 1``, to run a single window while debugging.

    Args:
        window_size: window width and height in pixels (small level; ignored at the
            large level, where the seed's configs also pass it).
        limit: at most this many windows per partition, chosen deterministically.
    """

    def __init__(self, window_size: int = 128, limit: int | None = None) -> None:
        if window_size <= 0:
            raise ValueError(f"window_size must be positive, got {window_size}")
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        self.window_size = window_size
        self.limit = limit

    def partition_request(self, features: list) -> list[Partition]:
        """One partition per feature."""
        return [Partition(id=f.id, features=[f]) for f in features]

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> list[WindowSpec]:
        """One centred window per feature."""
        out = []
        half = self.window_size / 2
        for feature in partition.features:
            grid = projection.grid_for(feature)
            c = grid.to_pixels(feature.geometry.centroid)
            x0, y0 = math.floor(c.x - half), math.floor(c.y - half)
            bounds = (x0, y0, x0 + self.window_size, y0 + self.window_size)
            if owned(partition, grid, bounds):
                out.append(make_window(grid, bounds, feature))
        return apply_limit(out, self.limit)
