"""A quicklook PNG of a result raster, with a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw
from rasterio.enums import Resampling

from rslp.common.postprocessing.geotiff import PALETTE
from rslp.fsutil import atomic_path

NODATA_RGB = (255, 255, 255)


def write_quicklook(
    raster: Path,
    out: Path,
    class_names: list[str] | None,
    max_size: int = 1024,
) -> Path:
    """Render band 1 of ``raster`` as a PNG of at most ``max_size`` px, with a legend.

    Classes get the same colours as the COG's colormap and a legend of class names;
    other rasters get a grey ramp stretched between the 2nd and 98th percentiles, with
    the value range in the legend. Nodata is white.
    """
    with rasterio.open(raster) as src:
        f = max(src.width, src.height) / max_size
        shape = (max(1, round(src.height / max(f, 1))), max(1, round(src.width / max(f, 1))))
        band = src.read(1, out_shape=shape, resampling=Resampling.nearest)
        nodata = src.nodata
    valid = np.ones(band.shape, dtype=bool) if nodata is None else band != nodata
    if nodata is not None and np.isnan(nodata):
        valid = ~np.isnan(band)
    rgb = np.full((*band.shape, 3), NODATA_RGB, dtype=np.uint8)
    entries: list[tuple[tuple[int, int, int], str]] = []
    if class_names:
        for i, name in enumerate(class_names):
            color = PALETTE[i % len(PALETTE)]
            rgb[valid & (band == i)] = color
            entries.append((color, f"{i}: {name}"))
    elif valid.any():
        lo, hi = np.percentile(band[valid], [2, 98])
        g = np.clip((band.astype(float) - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
        rgb[valid] = np.stack([g, g, g], axis=-1)[valid]
        entries = [((0, 0, 0), f"{lo:.4g}"), ((255, 255, 255), f"{hi:.4g}")]
    entries.append((NODATA_RGB, "nodata"))
    img = Image.fromarray(rgb)
    legend_w = 12 + max(len(t) for _, t in entries) * 7 + 24
    canvas = Image.new(
        "RGB", (img.width + legend_w, max(img.height, 16 * len(entries) + 8)), "white"
    )
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (color, text) in enumerate(entries):
        y = 6 + 16 * k
        x = img.width + 8
        draw.rectangle((x, y, x + 12, y + 12), fill=color, outline=(0, 0, 0))
        draw.text((x + 18, y), text, fill=(0, 0, 0))
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    return out
