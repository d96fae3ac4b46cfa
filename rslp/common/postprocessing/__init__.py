"""Postprocessors: window outputs -> partition artifacts -> final results."""

from rslp.common.postprocessing.interface import OutputLayer, PostprocessInterface, WindowResult
from rslp.common.postprocessing.raster import CombineGeotiff, NoopRaster

__all__ = ["CombineGeotiff", "NoopRaster", "OutputLayer", "PostprocessInterface", "WindowResult"]
