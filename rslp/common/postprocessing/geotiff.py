"""GeoTIFF and Cloud-Optimized GeoTIFF writing and mosaicking."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.merge
import rasterio.shutil
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling

from rslp.common.postprocessing.legend import Legend
from rslp.common.postprocessing.transform import valid_mask
from rslp.fsutil import atomic_path

logger = logging.getLogger(__name__)

# Distinct colours for class ids (a colormap is written when classes are known).
PALETTE = [
    (34, 139, 34),
    (30, 144, 255),
    (218, 165, 32),
    (178, 34, 34),
    (148, 0, 211),
    (255, 140, 0),
    (0, 206, 209),
    (128, 128, 0),
    (255, 105, 180),
    (112, 128, 144),
]


def _tags(class_names: list[str] | None, legend: Legend | None = None) -> dict[str, str]:
    tags: dict[str, str] = {}
    if class_names:
        tags["class_names"] = json.dumps(class_names)
        # a value the legend does not name keeps its place in the list, but gets no tag
        tags.update({f"class_{i}": n for i, n in enumerate(class_names) if n != f"class_{i}"})
    if legend is not None and legend.classes:
        tags.update({f"class_{c.value}": c.label for c in legend.classes})
        tags["class_colors"] = json.dumps({str(c.value): list(c.rgba) for c in legend.classes})
    if legend is not None and legend.value_range is not None:
        tags["value_range"] = json.dumps(list(legend.value_range))
        tags["colormap"] = legend.colormap
    return tags


def colors_for(
    class_names: list[str] | None, legend: Legend | None
) -> dict[int, tuple[int, int, int, int]]:
    """Class value -> RGBA: the legend's colours, else the palette for each class name."""
    if legend is not None and legend.classes:
        return legend.rgba_of()
    return {i: PALETTE[i % len(PALETTE)] + (255,) for i in range(len(class_names or []))}


def _profile(
    array: np.ndarray,
    crs: Any,
    transform: Affine,
    nodata: float | None,
    class_names: list[str] | None = None,
    legend: Legend | None = None,
) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        **({"photometric": "palette"} if _paletted(array, class_names, legend) else {}),
    }


PALETTE_DTYPES = {"uint8": 255, "uint16": 65535}  # what GeoTIFF colour tables index


def _paletted(array: np.ndarray, class_names: list[str] | None, legend: Legend | None) -> bool:
    classes = bool(class_names) or (legend is not None and bool(legend.classes))
    return classes and array.shape[0] == 1 and str(array.dtype) in PALETTE_DTYPES


def _decorate(dst: Any, class_names: list[str] | None, legend: Legend | None = None) -> None:
    """Record class names (and colours) as tags and, for one-band classes, a colormap.

    Call it before writing pixels: GDAL fixes the photometric tag at the first write.
    """
    dst.update_tags(**_tags(class_names, legend))
    colors = colors_for(class_names, legend)
    top = PALETTE_DTYPES.get(dst.dtypes[0])
    if colors and dst.count == 1 and top is not None:
        dst.write_colormap(1, {v: c for v, c in colors.items() if 0 <= v <= top})


def class_values(class_names: list[str] | None, legend: Legend | None) -> list[int]:
    """The stored values of a class raster's classes (empty when it holds no classes)."""
    if legend is not None and legend.classes:
        return [int(c.value) for c in legend.classes if isinstance(c.value, int)]
    return list(range(len(class_names or [])))


def as_class_map(
    array: np.ndarray, nodata: float | None, classes: list[int]
) -> tuple[np.ndarray, float | None]:
    """A one-band class raster in the smallest unsigned integer type holding its values.

    A model's class map often comes out as float32 (its output layer's type), which a
    GIS cannot show with a colour table. When ``classes`` are known and every valid pixel
    is a whole number from 0 up, the raster becomes uint8 (else uint16, uint32), large
    enough for every class value and the nodata value; a nodata value that cannot be
    stored (None, NaN, negative, fractional) becomes the type's maximum (255 for uint8),
    which is above every class. Anything else is returned unchanged.

    Returns:
        (the raster, its nodata value).
    """
    if not classes or array.shape[0] != 1:
        return array, nodata
    valid = valid_mask(array, nodata)
    data = array[valid]
    if data.size and (
        not np.all(np.isfinite(data)) or data.min() < 0 or np.any(data != np.floor(data))
    ):
        return array, nodata  # not a class map (e.g. scores)
    top = max([*classes, int(data.max()) if data.size else 0])
    keep = nodata is not None and not np.isnan(nodata) and nodata >= 0 and nodata == int(nodata)
    for dtype, most in (("uint8", 255), ("uint16", 65535), ("uint32", 2**32 - 1)):
        fill = int(nodata) if keep and nodata is not None else (most if top < most else None)
        if fill is not None and max(top, fill) <= most:
            if str(array.dtype) == dtype and (keep or nodata is None):
                return array, nodata
            out = np.where(valid, array, fill).astype(dtype)
            return out, float(fill)
    return array, nodata


def write_geotiff(
    path: Path,
    array: np.ndarray,
    crs: Any,
    transform: Affine,
    nodata: float | None,
    class_names: list[str] | None = None,
    legend: Legend | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a ``(bands, h, w)`` array as a deflate-compressed GeoTIFF, atomically."""
    profile = _profile(array, crs, transform, nodata, class_names, legend)
    profile.update(compress="deflate", tiled=True, blockxsize=256, blockysize=256)
    if array.shape[1] < 256 or array.shape[2] < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        _decorate(dst, class_names, legend)
        dst.update_tags(**(tags or {}))
        dst.write(array)
    return path


def _aligned(srcs: list[Any]) -> bool:
    """Whether inputs share CRS and pixel grid (integer offsets, same square resolution)."""
    t0 = srcs[0].transform
    crs0 = srcs[0].crs
    for s in srcs:
        t = s.transform
        if s.crs != crs0 or t.a != t0.a or t.e != t0.e or t.b != 0 or t.d != 0:
            return False
        dx, dy = (t.c - t0.c) / t0.a, (t.f - t0.f) / t0.e
        if abs(dx - round(dx)) > 1e-6 or abs(dy - round(dy)) > 1e-6:
            return False
    return True


def _place_first(srcs: list[Any], nodata: float | None) -> tuple[np.ndarray, Affine]:
    """Mosaic grid-aligned inputs by array placement; the first input wins overlaps."""
    res_x, res_y = srcs[0].transform.a, srcs[0].transform.e
    left = min(s.transform.c for s in srcs)
    top = max(s.transform.f for s in srcs) if res_y < 0 else min(s.transform.f for s in srcs)
    offsets = [
        (round((s.transform.c - left) / res_x), round((s.transform.f - top) / res_y)) for s in srcs
    ]
    width = max(ox + s.width for (ox, _), s in zip(offsets, srcs, strict=True))
    height = max(oy + s.height for (_, oy), s in zip(offsets, srcs, strict=True))
    fill = np.nan if nodata is None else nodata
    out = np.full((srcs[0].count, height, width), fill, dtype=srcs[0].dtypes[0])
    empty = np.ones((height, width), dtype=bool)
    for (ox, oy), s in zip(offsets, srcs, strict=True):
        data = s.read()
        valid = np.ones(data.shape[1:], dtype=bool)
        if s.nodata is not None:
            valid = ~np.all(data == s.nodata, axis=0)
            if np.isnan(s.nodata):
                valid = ~np.all(np.isnan(data), axis=0)
        dst_empty = empty[oy : oy + s.height, ox : ox + s.width]
        take = valid & dst_empty
        region = out[:, oy : oy + s.height, ox : ox + s.width]
        region[:, take] = data[:, take]
        dst_empty[take] = False
    return out, Affine(res_x, 0.0, left, 0.0, res_y, top)


def mosaic_to_cog(
    inputs: list[Path],
    out: Path,
    nodata: float | None,
    class_names: list[str] | None = None,
    legend: Legend | None = None,
) -> Path:
    """Mosaic GeoTIFFs into one Cloud-Optimized GeoTIFF (:func:`mosaic`, then :func:`write_cog`)."""
    array, transform, crs = mosaic(inputs, nodata)
    write_cog(out, array, crs, transform, nodata, class_names, legend)
    return out


def mosaic(inputs: list[Path], nodata: float | None) -> tuple[np.ndarray, Affine, Any]:
    """Mosaic GeoTIFFs into one array: ``(bands, h, w)``, its transform and CRS.

    Overlaps resolve to the first input in the given order (callers sort inputs, so the
    result is deterministic). Grid-aligned inputs (the usual case: windows of one
    partition) are placed directly as arrays; others go through ``rasterio.merge``. Inputs
    in several CRSs are reprojected (nearest neighbour, so class ids stay class ids) into
    the CRS that holds the most input pixels; ties go to the CRS that sorts first.

    Args:
        inputs: GeoTIFF paths (at least one).
        nodata: nodata value of the result (also where no input covers a pixel).
    """
    if not inputs:
        raise ValueError("mosaic_to_cog needs at least one input")
    srcs = [rasterio.open(p) for p in inputs]
    crss = [s.crs.to_string() if s.crs else "" for s in srcs]
    try:
        if _aligned(srcs):
            array, transform = _place_first(srcs, nodata)
            target: Any = srcs[0].crs
        else:
            array, transform, target = _merge_any(srcs, nodata)
    finally:
        for s in srcs:
            s.close()
    if len({str(t) for t in crss}) > 1:
        logger.warning(
            "the results span %d CRSs; they are reprojected into one raster in %s (the "
            "reference runner writes one file per CRS)",
            len(set(crss)),
            target,
        )
    return array, transform, target


def _merge_any(srcs: list[Any], nodata: float | None) -> tuple[np.ndarray, Affine, str]:
    weight: Counter[str] = Counter()
    for s in srcs:
        weight[s.crs.to_string()] += s.width * s.height
    target = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    res = min(abs(s.transform.a) for s in srcs if s.crs.to_string() == target)
    views: list[Any] = []
    try:
        for s in srcs:
            if s.crs.to_string() == target:
                views.append(s)
            else:
                views.append(WarpedVRT(s, crs=target, resampling=Resampling.nearest, nodata=nodata))
        array, transform = rasterio.merge.merge(
            views, nodata=nodata, method="first", res=(res, res), target_aligned_pixels=True
        )
    finally:
        for v in views:
            if isinstance(v, WarpedVRT):
                v.close()
    return array, transform, target


def write_cog(
    out: Path,
    array: np.ndarray,
    crs: Any,
    transform: Affine,
    nodata: float | None,
    class_names: list[str] | None = None,
    legend: Legend | None = None,
    tags: dict[str, str] | None = None,
    descriptions: list[str] | None = None,
) -> Path:
    """Write a ``(bands, h, w)`` array as a Cloud-Optimized GeoTIFF, atomically.

    Deflate-compressed 256 px tiles, nearest-neighbour overviews, explicit nodata, and
    for class rasters the class names (and the legend's colours) as tags and a colormap;
    ``descriptions`` name the bands (a multi-head result: one field per band).
    """
    profile = _profile(array, crs, transform, nodata, class_names, legend)
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp_ds:
            _decorate(tmp_ds, class_names, legend)
            tmp_ds.update_tags(**(tags or {}))
            for i, d in enumerate(descriptions or [], start=1):
                tmp_ds.set_band_description(i, d)
            tmp_ds.write(array)
        with mem.open() as src, atomic_path(out) as tmp:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                compress="DEFLATE",
                overview_resampling="nearest",
                blocksize=256,
            )
    return out


def write_tiles(
    out: Path,
    array: np.ndarray,
    crs: Any,
    transform: Affine,
    nodata: float | None,
    max_pixels: int | None,
    class_names: list[str] | None = None,
    legend: Legend | None = None,
    tags: dict[str, str] | None = None,
    descriptions: list[str] | None = None,
) -> list[Path]:
    """Write ``array`` as one COG ``out``, or as tiles when a side exceeds ``max_pixels``.

    Tiles are ``<stem>_<row>_<col>.tif`` of at most ``max_pixels`` a side (row and column
    counted from the top left); tiles holding only nodata are left out.
    """
    h, w = array.shape[1:]
    if max_pixels is None or (h <= max_pixels and w <= max_pixels):
        return [
            write_cog(out, array, crs, transform, nodata, class_names, legend, tags, descriptions)
        ]
    paths = []
    for r, y in enumerate(range(0, h, max_pixels)):
        for c, x in enumerate(range(0, w, max_pixels)):
            tile = array[:, y : y + max_pixels, x : x + max_pixels]
            if nodata is not None and (
                np.all(np.isnan(tile)) if np.isnan(nodata) else np.all(tile == nodata)
            ):
                continue
            path = out.with_name(f"{out.stem}_{r}_{c}{out.suffix}")
            t = transform * Affine.translation(x, y)
            paths.append(
                write_cog(path, tile, crs, t, nodata, class_names, legend, tags, descriptions)
            )
    return paths
