"""Ready-made raster postprocessors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.features import geometry_mask

from rslp.common.partitioners.projection import PixelGrid, lonlat_to_pixels
from rslp.common.postprocessing.geotiff import (
    as_class_map,
    class_values,
    mosaic,
    write_geotiff,
    write_tiles,
)
from rslp.common.postprocessing.interface import OutputLayer, WindowResult, warn_once
from rslp.common.postprocessing.legend import Legend
from rslp.common.postprocessing.passthrough import PassThrough
from rslp.common.postprocessing.quicklook import render, render_quicklook
from rslp.common.postprocessing.transform import TRANSFORM_TAG, LinearTransform
from rslp.fsutil import write_json_atomic


def nodata_collides(value: float, layer: OutputLayer) -> str | None:
    """The class name ``value`` would hide as nodata, or None."""
    return layer.class_at(value)


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
        write_geotiff(
            path,
            array,
            result.crs,
            result.transform,
            layer.nodata,
            layer.class_names,
            layer.legend,
        )
        return [path]


FIELDS_TAG = "fields"
LEGEND_JSON = "legend.json"


def field_band(
    band: np.ndarray, nodata: float | None, legend: Legend
) -> tuple[np.ndarray, float | None]:
    """One head's band as its own raster.

    A class field becomes the smallest unsigned integer type holding its classes and the
    nodata value (:func:`as_class_map`: the output layer's nodata, else the type's top);
    a regression field stays float32, its nodata NaN where the layer's cannot be stored.
    """
    if legend.classes:
        return as_class_map(band[None], nodata, [c.value for c in legend.classes])
    out = band.astype(np.float32)[None]
    if nodata is None or np.isnan(nodata):
        return out, float("nan")
    out[0][band == nodata] = np.nan
    return out, float("nan")


class CombineGeotiff(NoopRaster):
    """Mosaic rasters into Cloud-Optimized GeoTIFFs.

    Window stage: as :class:`NoopRaster`. Partition stage: one COG ``<partition>.tif``.
    Dataset stage: one COG ``result.tif`` for the whole request and, with ``quicklook``,
    ``result.png`` with a legend. Overlapping windows resolve to the window whose name
    sorts first (partitions likewise, by id); a request spanning UTM zones gives one COG,
    reprojected (nearest) into the zone holding most pixels. Use it for map products.

    The COG carries the output layer's nodata, class names and, from the project's
    ``inference_results_config``, the class colours as its colormap.

    Args:
        clip_to_request: see :class:`NoopRaster`.
        value_map: see :class:`NoopRaster`.
        quicklook: also write ``result.png``.
        max_pixels_per_dimension: split a mosaic larger than this (either side) into tiles
            ``<name>_<row>_<col>.tif`` of at most this many pixels a side; default one file.
        nodata_value: the nodata value written (default: the output layer's). A value that
            is a class id of the layer is refused with a warning and the layer's is kept.
        value_transform: ``{type: linear, scale, offset, output_dtype}``: valid pixels
            become ``scale * value + offset`` (cast, and clipped for integer types), once:
            a stage whose inputs were transformed the same way leaves them as they are.
    """

    def __init__(
        self,
        clip_to_request: bool = False,
        value_map: dict[int, int] | None = None,
        quicklook: bool = True,
        max_pixels_per_dimension: int | None = None,
        nodata_value: float | None = None,
        value_transform: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(clip_to_request=clip_to_request, value_map=value_map)
        m = max_pixels_per_dimension
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ValueError(f"max_pixels_per_dimension must be a whole number >= 1, got {m!r}")
        if nodata_value is not None and (
            isinstance(nodata_value, bool) or not isinstance(nodata_value, int | float)
        ):
            raise ValueError(f"nodata_value must be a number, got {nodata_value!r}")
        self.quicklook = quicklook
        self.max_pixels_per_dimension = m
        self.nodata_value = nodata_value
        self.value_transform = (
            None if value_transform is None else LinearTransform.parse(value_transform)
        )

    def output_nodata(self, layer: OutputLayer) -> float | None:
        """The nodata value written: ``nodata_value`` unless it is a class id of the layer."""
        v = self.nodata_value
        if v is None or nodata_collides(v, layer) is None:
            return layer.nodata if v is None else v
        warn_once(
            f"CombineGeotiff nodata_value {v:g} is class {nodata_collides(v, layer)!r}; "
            f"writing nodata {layer.nodata} (the output layer's) instead"
        )
        return layer.nodata

    def _combine(
        self, inputs: list[Path], layer: OutputLayer, out: Path
    ) -> tuple[list[Path], Any, Any, Any]:
        nodata = self.output_nodata(layer)
        array, transform, crs = mosaic(sorted(inputs), nodata)
        tags: dict[str, str] = {}
        if self.value_transform is not None:
            if not self.value_transform.applied_to(inputs):
                array = self.value_transform.apply(array, nodata)
            tags[TRANSFORM_TAG] = self.value_transform.tag
            nodata = self.value_transform.nodata_after(nodata)
        names: list[str] | None = None
        class_names, legend = layer.class_names, layer.legend
        if layer.fields:  # a band per head: named bands, each head's legend in its own file
            names = [name for name, _ in layer.fields]
            tags[FIELDS_TAG] = json.dumps(names)
            class_names, legend = None, None
        else:  # a class map a GIS opens as classes: integer type and a colour table
            array, nodata = as_class_map(array, nodata, class_values(class_names, legend))
        paths = write_tiles(
            out,
            array,
            crs,
            transform,
            nodata,
            self.max_pixels_per_dimension,
            class_names,
            legend,
            tags,
            descriptions=names,
        )
        return paths, (array, nodata), transform, crs

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Mosaic the partition's window GeoTIFFs into one COG (or tiles)."""
        _require_raster(layer, type(self).__name__)
        return self._combine(inputs, layer, out_dir / f"{partition_id}.tif")[0]

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Mosaic all partition COGs into ``result.tif`` (or tiles) and ``result.png``.

        With several heads (``layer.fields``) ``result.tif`` has a named band per field,
        and each field also gets ``result_<field>.tif`` (one band: a class map with its
        colour table, or a regression's float values), ``result_<field>.png`` and an
        entry in ``legend.json``.
        """
        _require_raster(layer, type(self).__name__)
        paths, (array, nodata), transform, crs = self._combine(
            inputs, layer, out_dir / "result.tif"
        )
        if layer.fields:
            return paths + self._fields(array, nodata, transform, crs, layer, out_dir)
        if not self.quicklook:
            return paths
        band = (layer.legend.band if layer.legend else 1) - 1
        png = out_dir / "result.png"
        return [*paths, render_quicklook(array[min(band, len(array) - 1)], nodata, png, layer)]

    def _fields(
        self,
        array: np.ndarray,
        nodata: float | None,
        transform: Any,
        crs: Any,
        layer: OutputLayer,
        out_dir: Path,
    ) -> list[Path]:
        """Each head's own COG and preview, and ``legend.json`` (see process_dataset)."""
        out: list[Path] = []
        entries = []
        for i, (name, legend) in enumerate(layer.fields):
            data, nd = field_band(array[i], nodata, legend)
            names = legend.class_names()
            out += write_tiles(
                out_dir / f"result_{name}.tif",
                data,
                crs,
                transform,
                nd,
                self.max_pixels_per_dimension,
                names,
                legend,
                descriptions=[name],
            )
            if self.quicklook:
                out.append(render(data[0], nd, out_dir / f"result_{name}.png", names, legend))
            entries.append(_legend_entry(name, i + 1, legend, data.dtype, nd))
        path = out_dir / LEGEND_JSON
        write_json_atomic(path, {"bands": entries})
        out.append(path)
        return out


def _legend_entry(
    name: str, band: int, legend: Legend, dtype: Any, nodata: float | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "field": name,
        "band_index": band,
        "file": f"result_{name}.tif",
        "dtype": str(dtype),
        "nodata": None if nodata is None or np.isnan(nodata) else nodata,
    }
    if legend.classes:
        entry["classes"] = [
            {"value": c.value, "label": c.label, "color": list(c.rgba)} for c in legend.classes
        ]
    else:
        entry["value_range"] = list(legend.value_range or ())
        entry["colormap"] = legend.colormap
    return entry
