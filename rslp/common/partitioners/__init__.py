"""Partitioners: request -> partitions (window groups) -> windows."""

from rslp.common.partitioners.chunk import ChunkPartitioner
from rslp.common.partitioners.fixed_window import FixedWindowPartitioner
from rslp.common.partitioners.grid import GridPartitioner
from rslp.common.partitioners.interface import (
    OutputProjection,
    Partition,
    PartitionInterface,
    WindowSpec,
)
from rslp.common.partitioners.noop import NoopPartitioner
from rslp.common.partitioners.reprojection import ReprojectionPartitioner

__all__ = [
    "ChunkPartitioner",
    "FixedWindowPartitioner",
    "GridPartitioner",
    "NoopPartitioner",
    "OutputProjection",
    "Partition",
    "PartitionInterface",
    "ReprojectionPartitioner",
    "WindowSpec",
]
