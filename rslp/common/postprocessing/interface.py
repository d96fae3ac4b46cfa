"""The postprocessing contract: three stages, one strategy object per stage.

``postprocessing_strategies.yaml`` names one strategy per stage (the seed's keys):

- ``strategy_small`` -> :meth:`PostprocessInterface.process_window`: one window's model
  output becomes a digestible artifact (for rasters, a GeoTIFF).
- ``strategy_medium`` -> :meth:`PostprocessInterface.process_partition`: a partition's
  window artifacts become its per-partition artifact(s).
- ``strategy_large`` -> :meth:`PostprocessInterface.process_dataset`: all partition
  artifacts become the final result(s).

Each method reads and writes files only, so each stage runs alone in a fresh process.
The output layer's type, bands, nodata and class names come from the dataset config
(:class:`OutputLayer`), never from in-memory state.

Ready-made raster strategies live in :mod:`rslp.common.postprocessing.raster`:
:class:`~rslp.common.postprocessing.raster.NoopRaster` (pass artifacts through: one file
per window) and :class:`~rslp.common.postprocessing.raster.CombineGeotiff` (mosaic into one
Cloud-Optimized GeoTIFF per partition and one for the whole request).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from shapely.geometry.base import BaseGeometry

from rslp.common.postprocessing.legend import Legend
from rslp.request import RequestFeature

logger = logging.getLogger(__name__)
_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """Log a warning the first time this process sees ``message`` (not for every window)."""
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)


@dataclass(frozen=True)
class OutputLayer:
    """The dataset config's output layer, as postprocessors need it.

    Attributes:
        name: layer name in dataset.json.
        type: ``raster`` or ``vector``.
        bands: raster band names (empty for vector layers).
        dtype: raster dtype name (numpy), e.g. ``uint8``.
        nodata: the nodata value written to rasters; never a valid class.
        class_names: class names by class id, when the layer (or the legend) declares them.
        legend: class colours or value range from ``inference_results_config``, if any.
        fields: a model with several heads: each band's field name and legend, in band
            order (empty for one head).
    """

    name: str
    type: str
    bands: list[str] = field(default_factory=list)
    dtype: str = "uint8"
    nodata: float | None = None
    class_names: list[str] | None = None
    legend: Legend | None = None
    fields: list[tuple[str, Legend]] = field(default_factory=list)

    def class_at(self, value: float) -> str | None:
        """The class a raster value stands for, or None (see :func:`class_at`)."""
        return class_at(value, self.class_names, self.legend)


def class_at(value: float, class_names: list[str] | None, legend: Legend | None) -> str | None:
    """The class a raster value stands for, or None.

    The legend's exact values when it has classes (values may start anywhere and skip
    some), else the index into ``class_names``.
    """
    if value is None or not float(value).is_integer():
        return None
    if legend is not None and legend.classes:
        return next((c.label for c in legend.classes if c.value == int(value)), None)
    names = class_names or []
    return names[int(value)] if 0 <= value < len(names) else None


@dataclass
class VectorFeature:
    """One vector prediction, in the window's pixel coordinates.

    Attributes:
        geometry: the geometry in pixel coordinates of the window's grid (``col = x /
            resolution``, ``row = -y / resolution`` in the window's CRS).
        properties: the model's properties (class, score, ...).
    """

    geometry: BaseGeometry
    properties: dict[str, Any]


@dataclass
class WindowResult:
    """One window's model output, read from the rslearn dataset.

    Attributes:
        partition_id: the window's group.
        name: the window name.
        crs: the window's CRS.
        resolution: CRS units per pixel.
        bounds: pixel bounds ``(col0, row0, col1, row1)``.
        time_range: the window's time range.
        feature_ids: the request features that needed this window.
        request_features: those request features (geometry in lon/lat, properties).
        raster: ``(bands, height, width)`` array for raster layers, else None.
        vector: the predicted features for vector layers, else None.
    """

    partition_id: str
    name: str
    crs: str
    resolution: float
    bounds: tuple[int, int, int, int]
    time_range: tuple[datetime, datetime] | None
    feature_ids: list[str]
    request_features: list[RequestFeature] = field(default_factory=list)
    raster: np.ndarray | None = None
    vector: list[VectorFeature] | None = None

    @property
    def transform(self) -> Affine:
        """The affine transform of the window's pixel grid."""
        res = self.resolution
        return Affine(res, 0.0, self.bounds[0] * res, 0.0, -res, -self.bounds[1] * res)


class PostprocessInterface(ABC):
    """A postprocessing strategy. Implement all three stages; each writes into ``out_dir``.

    Set the class attribute ``LAYER_TYPE`` to ``"raster"`` or ``"vector"`` when the strategy
    handles one kind of output layer only (``esbuild validate`` checks it).

    Every method returns the files it wrote, in a deterministic order, and must give
    identical files for identical inputs. Write each file under a temporary name and
    rename it into place, so no partial output ever looks complete.
    """

    LAYER_TYPE: str | None = None

    @abstractmethod
    def process_window(self, result: WindowResult, layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Window stage: turn one window's model output into artifact files."""

    @abstractmethod
    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Partition stage: combine a partition's window artifacts."""

    @abstractmethod
    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Dataset stage: combine all partitions' artifacts into the final result."""
