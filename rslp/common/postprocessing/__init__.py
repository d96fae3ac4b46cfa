"""Postprocessors: window outputs -> partition artifacts -> final results."""

from rslp.common.postprocessing.interface import (
    OutputLayer,
    PostprocessInterface,
    VectorFeature,
    WindowResult,
)
from rslp.common.postprocessing.raster import CombineGeotiff, NoopRaster
from rslp.common.postprocessing.vector import CombineGeojson, NoopVector

__all__ = [
    "CombineGeojson",
    "CombineGeotiff",
    "NoopRaster",
    "NoopVector",
    "OutputLayer",
    "PostprocessInterface",
    "VectorFeature",
    "WindowResult",
]
