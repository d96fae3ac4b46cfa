"""Ready-made raster postprocessors."""

from __future__ import annotations

import shutil
from pathlib import Path

from rslp.common.postprocessing.geotiff import mosaic_to_cog, write_geotiff
from rslp.common.postprocessing.interface import OutputLayer, PostprocessInterface, WindowResult
from rslp.runner.scratch import atomic_path


def _require_raster(layer: OutputLayer, who: str) -> None:
    if layer.type != "raster":
        raise ValueError(f"{who} needs a raster output layer; layer {layer.name!r} is {layer.type}")


def _copy_all(inputs: list[Path], out_dir: Path) -> list[Path]:
    out = []
    for src in inputs:
        dst = out_dir / src.name
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        out.append(dst)
    return out


class NoopRaster(PostprocessInterface):
    """Pass raster outputs through unchanged.

    Window stage: the window's output as a GeoTIFF (``<window>.tif``) with the layer's
    nodata and class names. Partition and dataset stages: copy the artifacts as they are
    (one file per window). Use it when you want the per-window GeoTIFFs themselves.
    """

    def process_window(self, result: WindowResult, layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Write the window's raster as a GeoTIFF."""
        _require_raster(layer, type(self).__name__)
        if result.raster is None:
            raise ValueError(f"window {result.name} has no raster output")
        path = out_dir / f"{result.name}.tif"
        write_geotiff(
            path, result.raster, result.crs, result.transform, layer.nodata, layer.class_names
        )
        return [path]

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Copy the window GeoTIFFs."""
        return _copy_all(sorted(inputs), out_dir)

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Copy every artifact into the results."""
        return _copy_all(sorted(inputs), out_dir)


class CombineGeotiff(NoopRaster):
    """Mosaic rasters into Cloud-Optimized GeoTIFFs.

    Window stage: as :class:`NoopRaster`. Partition stage: one COG ``<partition>.tif``.
    Dataset stage: one COG ``result.tif`` for the whole request. Overlapping windows
    resolve to the window whose name sorts first; across UTM zones the result is
    reprojected (nearest) into the zone holding most pixels. Use it for map products.
    """

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Mosaic the partition's window GeoTIFFs into one COG."""
        _require_raster(layer, type(self).__name__)
        out = out_dir / f"{partition_id}.tif"
        return [mosaic_to_cog(sorted(inputs), out, layer.nodata, layer.class_names)]

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Mosaic all partition COGs into ``result.tif``."""
        _require_raster(layer, type(self).__name__)
        out = out_dir / "result.tif"
        return [mosaic_to_cog(sorted(inputs), out, layer.nodata, layer.class_names)]
