"""A quicklook PNG of a result raster, with a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rslp.common.postprocessing.geotiff import colors_for
from rslp.common.postprocessing.interface import OutputLayer
from rslp.common.postprocessing.legend import Legend
from rslp.fsutil import atomic_path

NODATA_RGB = (255, 255, 255)


def render_quicklook(band: np.ndarray, nodata: float | None, out: Path, layer: OutputLayer) -> Path:
    """:func:`render` a result band with the output layer's classes and legend."""
    return render(band, nodata, out, layer.class_names, layer.legend)


def render(
    band: np.ndarray,
    nodata: float | None,
    out: Path,
    class_names: list[str] | None,
    legend: Legend | None = None,
    max_size: int = 1024,
) -> Path:
    """Render a 2-D array as a PNG of at most ``max_size`` px, with a legend.

    Classes get the COG's colours (the legend's, else the palette) and a legend of class
    names; a regression legend's value range and colormap draw other rasters, else a grey
    ramp stretched between the 2nd and 98th percentiles, with the value range in the
    legend. Nodata is white.
    """
    step = max(1, -(-max(band.shape) // max_size))
    band = band[::step, ::step]
    valid = np.ones(band.shape, dtype=bool) if nodata is None else band != nodata
    if nodata is not None and np.isnan(nodata):
        valid = ~np.isnan(band)
    rgb = np.full((*band.shape, 3), NODATA_RGB, dtype=np.uint8)
    entries: list[tuple[tuple[int, int, int], str]] = []
    colors = colors_for(class_names, legend)
    labels = {c.value: c.label for c in legend.classes} if legend and legend.classes else {}
    if colors:
        for value, rgba in sorted(colors.items()):
            color = (rgba[0], rgba[1], rgba[2])
            rgb[valid & (band == value)] = color
            name = labels.get(value) or (class_names or [])[value : value + 1] or [str(value)]
            entries.append((color, f"{value}: {name if isinstance(name, str) else name[0]}"))
    elif valid.any():
        if legend is not None and legend.value_range is not None:
            lo, hi = legend.value_range
            ramp = legend.ramp()
        else:
            lo, hi = (float(x) for x in np.percentile(band[valid], [2, 98]))
            ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
        idx = np.clip((band.astype(float) - lo) / max(hi - lo, 1e-12) * 255, 0, 255)
        rgb[valid] = ramp[np.nan_to_num(idx).astype(np.uint8)][valid]
        first, last = ramp[0], ramp[-1]
        entries = [
            ((int(first[0]), int(first[1]), int(first[2])), f"{lo:.4g}"),
            ((int(last[0]), int(last[1]), int(last[2])), f"{hi:.4g}"),
        ]
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
