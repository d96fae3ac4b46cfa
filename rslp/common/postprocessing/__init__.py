"""Postprocessors: window outputs -> partition artifacts -> final results."""

from rslp.common.postprocessing.interface import (
    OutputLayer,
    PostprocessInterface,
    VectorFeature,
    WindowResult,
)
from rslp.common.postprocessing.raster import CombineGeotiff, NoopRaster
from rslp.common.postprocessing.vector import (
    CombineAndDeduplicateGeojson,
    CombineGeojson,
    NoopVector,
    SimplifyPolygons,
)

__all__ = [
    "CombineAndDeduplicateGeojson",
    "CombineGeojson",
    "CombineGeotiff",
    "NoopRaster",
    "NoopVector",
    "OutputLayer",
    "PostprocessInterface",
    "SimplifyPolygons",
    "VectorFeature",
    "WindowResult",
]
