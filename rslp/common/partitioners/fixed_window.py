"""FixedWindowPartitioner: one fixed-size window centred on each feature."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.interface import (
    FeatureFrame,
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowEstimate,
    WindowSpec,
    apply_limit,
)
from rslp.common.partitioners.projection import PixelBounds
from rslp.request import RequestFeature


def _parts(geom: BaseGeometry) -> list[BaseGeometry]:
    return list(getattr(geom, "geoms", [geom]))


class FixedWindowPartitioner(PartitionInterface):
    """One unit per feature.

    Large level: one partition per feature (the partition id is the feature id).
    Small level: one ``window_size`` x ``window_size`` pixel window centred on each point,
    or on the centroid of each line or polygon; a multi-geometry gets one window per part.
    Use it for point-like requests (sites, fields) and, with ``limit: 1``, to run a single
    window while debugging.

    Args:
        window_size: window width and height in pixels (small level; ignored at the
            large level, where the seed's configs also pass it).
        limit: at most this many windows per partition, chosen deterministically.
        output_projection: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        use_utm: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
    """

    def __init__(
        self,
        window_size: int = 128,
        limit: int | None = None,
        output_projection: Any = None,
        use_utm: bool = False,
    ) -> None:
        super().__init__(output_projection, use_utm)
        if isinstance(window_size, float) and float(window_size).is_integer():
            window_size = int(window_size)  # the reference's configs write sizes as floats
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size <= 0:
            raise ValueError(f"window_size must be a positive whole number, got {window_size!r}")
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise ValueError(f"limit must be a positive whole number, got {limit!r}")
        self.window_size = window_size
        self.limit = limit

    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """One partition per feature."""
        return [Partition(id=f.id, features=[f]) for f in features]

    def estimate_partitions(self, features: list[RequestFeature]) -> int:
        """One per feature."""
        return len(features)

    def estimate_windows(
        self, features: list[RequestFeature], projection: OutputProjection
    ) -> WindowEstimate:
        """One window per part of each feature."""
        n = sum(len(_parts(f.geometry)) for f in features)
        return WindowEstimate(n, int(self.window_size), "window_size")

    def partition_windows(
        self, partition: Partition, projection: OutputProjection
    ) -> Iterator[WindowSpec]:
        """One centred window per feature (per part of a multi-geometry)."""
        half = self.window_size / 2

        def gen() -> Iterator[WindowSpec]:
            for feature in partition.features:
                frame = FeatureFrame(feature, projection)
                bounds: list[PixelBounds] = []
                for part in _parts(frame.pixels()):
                    c = part.centroid
                    x0, y0 = math.floor(c.x - half), math.floor(c.y - half)
                    bounds.append((x0, y0, x0 + self.window_size, y0 + self.window_size))
                yield from frame.owned_windows(partition, bounds)

        return apply_limit(gen(), self.limit)
