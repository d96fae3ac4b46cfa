"""Ready-made raster postprocessors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.features import geometry_mask

from rslp.common.partitioners.projection import PixelGrid, lonlat_to_pixels
from rslp.common.postprocessing.geotiff import mosaic_to_cog, write_geotiff
from rslp.common.postprocessing.interface import OutputLayer, WindowResult
from rslp.common.postprocessing.passthrough import PassThrough
from rslp.common.postprocessing.quicklook import write_quicklook


def _require_raster(layer: OutputLayer, who: str) -> None:
    if layer.type != "raster":
        raise ValueError(f"{who} needs a raster output layer; layer {layer.name!r} is {layer.type}")


def request_mask(result: WindowResult) -> np.ndarray | None:
    """True where a pixel of the window touches one of its (areal) request features.

    Returns None when the window's request features have no area (points, lines).
    """
    assert result.raster is not None
    grid = PixelGrid(result.crs, result.resolution)
    shapes = []
    for f in result.request_features:
        if f.geometry.area == 0:
            continue
        px = lonlat_to_pixels(f.geometry, grid)
        shapes.append(px)
    if not shapes:
        return None
    to_local = Affine.translation(result.bounds[0], result.bounds[1])
    return geometry_mask(
        shapes,
        out_shape=result.raster.shape[1:],
        transform=to_local,
        invert=True,
        all_touched=True,
    )


class NoopRaster(PassThrough):
    """Pass raster outputs through.

    Window stage: the window's output as a GeoTIFF (``<window>.tif``) with the layer's
    nodata and class names, optionally with values remapped and pixels outside the
    request set to nodata. Partition and dataset stages: copy the artifacts as they are
    (one file per window). Use it when you want the per-window GeoTIFFs themselves.

    Args:
        clip_to_request: set pixels outside the window's request polygons to nodata.
        value_map: replace values, e.g. ``{2: 1}`` to merge class 2 into class 1.
    """

    LAYER_TYPE = "raster"

    def __init__(
        self, clip_to_request: bool = False, value_map: dict[int, int] | None = None
    ) -> None:
        self.clip_to_request = clip_to_request
        self.value_map = {int(k): int(v) for k, v in (value_map or {}).items()}

    def process_window(self, result: WindowResult, layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Write the window's raster as a GeoTIFF (after the value map and the clip)."""
        _require_raster(layer, type(self).__name__)
        if result.raster is None:
            raise ValueError(f"window {result.name} has no raster output")
        array = result.raster
        if self.value_map:
            src = array.copy()
            for old, new in self.value_map.items():
                array = np.where(src == old, np.asarray(new, dtype=array.dtype), array)
        if self.clip_to_request:
            mask = request_mask(result)
            if mask is not None:
                if layer.nodata is None:
                    raise ValueError("clip_to_request needs a nodata value on the output layer")
                array = np.where(mask[None], array, np.asarray(layer.nodata, dtype=array.dtype))
        path = out_dir / f"{result.name}.tif"
        write_geotiff(path, array, result.crs, result.transform, layer.nodata, layer.class_names)
        return [path]


class CombineGeotiff(NoopRaster):
    """Mosaic rasters into Cloud-Optimized GeoTIFFs.

    Window stage: as :class:`NoopRaster`. Partition stage: one COG ``<partition>.tif``.
    Dataset stage: one COG ``result.tif`` for the whole request and, with ``quicklook``,
    ``result.png`` with a legend. Overlapping windows resolve to the window whose name
    sorts first (partitions likewise, by id); a request spanning UTM zones gives one COG,
    reprojected (nearest) into the zone holding most pixels. Use it for map products.

    Args:
        clip_to_request: see :class:`NoopRaster`.
        value_map: see :class:`NoopRaster`.
        quicklook: also write ``result.png``.
    """

    def __init__(
        self,
        clip_to_request: bool = False,
        value_map: dict[int, int] | None = None,
        quicklook: bool = True,
    ) -> None:
        super().__init__(clip_to_request=clip_to_request, value_map=value_map)
        self.quicklook = quicklook

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Mosaic the partition's window GeoTIFFs into one COG."""
        _require_raster(layer, type(self).__name__)
        out = out_dir / f"{partition_id}.tif"
        return [mosaic_to_cog(sorted(inputs), out, layer.nodata, layer.class_names)]

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Mosaic all partition COGs into ``result.tif`` (and ``result.png``)."""
        _require_raster(layer, type(self).__name__)
        cog = mosaic_to_cog(sorted(inputs), out_dir / "result.tif", layer.nodata, layer.class_names)
        if not self.quicklook:
            return [cog]
        return [cog, write_quicklook(cog, out_dir / "result.png", layer.class_names)]
