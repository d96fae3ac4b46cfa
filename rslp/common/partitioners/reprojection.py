"""ReprojectionPartitioner: one window per feature, on its bounds (window level only)."""

from __future__ import annotations

from typing import Any

from rslp.common.partitioners.interface import Partition
from rslp.common.partitioners.noop import NoopPartitioner
from rslp.request import RequestFeature


class ReprojectionPartitioner(NoopPartitioner):
    """Window level only: each feature becomes one window on its bounds, in the projection.

    The reference runner's partitioner of that name. Its window level is the
    :class:`~rslp.common.partitioners.noop.NoopPartitioner`'s; it refuses the partition
    level (requests stay in lon/lat there). Use it for requests whose features are already
    window-sized (fields, tiles), with ``output_projection`` or ``use_utm``.

    Args:
        output_projection: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        use_utm: see :class:`~rslp.common.partitioners.interface.PartitionInterface`.
        limit: at most this many windows per partition.
    """

    LEVELS = ("windows",)

    def __init__(
        self, output_projection: Any = None, use_utm: bool = False, limit: int | None = None
    ) -> None:
        super().__init__(limit=limit, output_projection=output_projection, use_utm=use_utm)

    def partition_request(self, features: list[RequestFeature]) -> list[Partition]:
        """Not supported: raises ValueError (the checks refuse it before any run)."""
        raise ValueError("ReprojectionPartitioner works only at the window level")

    def estimate_partitions(self, features: list[RequestFeature]) -> int:
        """One (the partition level is refused before any plan is made)."""
        return 1
