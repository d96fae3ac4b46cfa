"""NoopPartitioner: leave the request (or each feature) whole."""

from __future__ import annotations

from rslp.common.partitioners.interface import (
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowSpec,
    apply_limit,
    make_window,
    owned,
    request_digest,
)
from rslp.common.partitioners.projection import bounds_of


class NoopPartitioner(PartitionInterface):
    """No splitting.

    Large level: the whole request is one partition (id ``all-<content hash>``).
    Small level: one window per feature, on the pixel bounds of the feature's geometry.
    Use it for small requests, or to debug a request as a single unit.

    Args:
        limit: at most this many windows per partition (small level only).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit

    def partition_request(self, features: list) -> list[Partition]:
        """One partition holding every feature."""
        return [Partition(id=f"all-{request_digest(features)}", features=list(features))]

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> list[WindowSpec]:
        """One window per feature on the feature's bounds."""
        out = []
        for feature in partition.features:
            grid = projection.grid_for(feature)
            bounds = bounds_of(grid.to_pixels(feature.geometry))
            if owned(partition, grid, bounds):
                out.append(make_window(grid, bounds, feature))
        return apply_limit(out, self.limit)
