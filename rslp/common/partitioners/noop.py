"""NoopPartitioner: leave the request (or each feature) whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rslp.common.partitioners.interface import (
    FeatureFrame,
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowEstimate,
    WindowSpec,
    apply_limit,
    pixel_bounds,
    request_digest,
)
from rslp.common.partitioners.projection import bounds_of
from rslp.request import RequestFeature


class NoopPartitioner(PartitionInterface):
    """No splitting.

    Large level: the whole request is one partition (id ``all-<content hash>``).
    Small level: one window per feature, on the pixel bounds of the feature's geometry.
    Use it for small requests, or to debug a request as a single unit.

    Args:
        limit: at most this many windows per partition (small level only).
        output_projection: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        use_utm: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
    """

    def __init__(
        self, limit: int | None = None, output_projection: Any = None, use_utm: bool = False
    ) -> None:
        super().__init__(output_projection, use_utm)
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise ValueError(f"limit must be a positive whole number, got {limit!r}")
        self.limit = limit

    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """One partition holding every feature."""
        return [Partition(id=f"all-{request_digest(features)}", features=list(features))]

    def estimate_partitions(self, features: list[RequestFeature]) -> int:
        """One."""
        return 1

    def estimate_windows(
        self, features: list[RequestFeature], projection: OutputProjection
    ) -> WindowEstimate:
        """One window per feature, as large as the feature's bounds."""
        side = 0
        for f in features:
            c0, r0, c1, r1 = pixel_bounds(f, projection)
            side = max(side, c1 - c0, r1 - r0)
        return WindowEstimate(len(features), side)

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> Iterator[WindowSpec]:
        """One window per feature on the feature's bounds."""

        def gen() -> Iterator[WindowSpec]:
            for feature in partition.features:
                frame = FeatureFrame(feature, projection)
                yield from frame.owned_windows(partition, [bounds_of(frame.pixels())])

        return apply_limit(gen(), self.limit)
