"""ChunkPartitioner: partitions of a fixed number of features, in request order."""

from __future__ import annotations

import math
from typing import Any

from rslp.common.partitioners.interface import Partition, request_digest
from rslp.common.partitioners.noop import NoopPartitioner
from rslp.request import RequestFeature


class ChunkPartitioner(NoopPartitioner):
    """Groups of ``num_geometries_per_partition`` features.

    Partition level: the request's features in file order, ``num_geometries_per_partition``
    to a partition (the last may hold fewer); ids ``chunk<i>-<content hash>``, so a changed
    request gives new ids. Window level: one window per feature on its bounds (as
    :class:`~rslp.common.partitioners.noop.NoopPartitioner`). Use it for many small, scattered
    features (sites, fields), where a lon/lat grid would make many near-empty partitions.

    Args:
        num_geometries_per_partition: features per partition (partition level).
        output_projection: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        use_utm: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        limit: at most this many windows per partition (window level).
    """

    def __init__(
        self,
        num_geometries_per_partition: int,
        output_projection: Any = None,
        use_utm: bool = False,
        limit: int | None = None,
    ) -> None:
        super().__init__(limit=limit, output_projection=output_projection, use_utm=use_utm)
        n = num_geometries_per_partition
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(
                f"num_geometries_per_partition must be a positive whole number, got {n!r}"
            )
        self.num_geometries_per_partition = n

    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """Consecutive chunks of the request's features."""
        n = self.num_geometries_per_partition
        width = len(str(max(0, (len(features) - 1) // n)))
        out = []
        for i in range(0, len(features), n):
            chunk = list(features[i : i + n])
            out.append(
                Partition(id=f"chunk{i // n:0{width}d}-{request_digest(chunk)}", features=chunk)
            )
        return out

    def estimate_partitions(self, features: list[RequestFeature]) -> int:
        """Features divided by the chunk size, rounded up."""
        return math.ceil(len(features) / self.num_geometries_per_partition)
