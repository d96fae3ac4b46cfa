"""What a result's values mean and how they are drawn: class colours, value ranges, colormaps.

A :class:`Legend` comes from the project's ``inference_results_config`` (the reference
runner's key): classification fields give class values, labels and RGBA colours (the COG's
colormap and class tags, the quicklook's legend); regression fields give the value range and
the colormap of the quicklook. Colormaps are the usual matplotlib names, drawn from anchor
colours here (no plotting library needed); ``_r`` reverses one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rslp.config import InferenceResultsConfig

logger = logging.getLogger(__name__)

RGBA = tuple[int, int, int, int]

# Anchor colours, evenly spaced from the low end to the high end of each colormap.
_ANCHORS: dict[str, str] = {
    "viridis": "440154 482878 3e4989 31688e 26828e 1f9e89 35b779 6ece58 b5de2b fde725",
    "plasma": "0d0887 46039f 7201a8 9c179e bd3786 d8576b ed7953 fb9f3a fdca26 f0f921",
    "inferno": "000004 1b0c41 4a0c6b 781c6d a52c60 cf4446 ed6925 fb9b06 f7d13d fcffa4",
    "magma": "000004 180f3d 440f76 721f81 9e2f7f cd4071 f1605d fd9668 feca8d fcfdbf",
    "cividis": "00224e 123570 3b496c 575d6d 707173 8a8779 a69d75 c4b56c e4cf5b fee838",
    "greys": "ffffff 000000",
    "gray": "000000 ffffff",
    "greens": "f7fcf5 c7e9c0 74c476 238b45 00441b",
    "blues": "f7fbff c6dbef 6baed6 2171b5 08306b",
    "reds": "fff5f0 fcbba1 fb6a4a cb181d 67000d",
    "oranges": "fff5eb fdd0a2 fd8d3c d94801 7f2704",
    "ylgn": "ffffe5 d9f0a3 addd8e 41ab5d 004529",
    "rdylgn": "a50026 f46d43 fee08b d9ef8b 66bd63 006837",
    "spectral": "9e0142 f46d43 fee08b e6f598 66c2a5 5e4fa2",
    "rdbu": "67001f d6604d fddbc7 d1e5f0 4393c3 053061",
    "brbg": "543005 bf812d f6e8c3 c7eae5 35978f 003c30",
}
DEFAULT_COLORMAP = "viridis"


def colormap_names() -> list[str]:
    """The colormap names this module draws (each also with ``_r``)."""
    return sorted(_ANCHORS)


def colormap(name: str, n: int = 256) -> np.ndarray:
    """``n`` RGB colours (uint8, ``n x 3``) of a named colormap, low to high.

    Raises:
        ValueError: for a name not in :func:`colormap_names` (``_r`` allowed).
    """
    key = name.lower()
    reverse = key.endswith("_r")
    key = key.removesuffix("_r")
    if key not in _ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; known: {', '.join(colormap_names())}")
    hexes = _ANCHORS[key].split()
    anchors = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in hexes], float)
    pos = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], axis=1)
    rgb = np.rint(rgb).astype(np.uint8)
    return rgb[::-1] if reverse else rgb


@dataclass(frozen=True)
class LegendClass:
    """One class: the value stored in the raster, its label and colour."""

    value: int
    label: str
    rgba: RGBA


@dataclass(frozen=True)
class Legend:
    """How to read and draw a result raster's values.

    Attributes:
        classes: the classes, by value (empty for regression results).
        band: the 1-based band the classes or the range describe.
        value_range: (min, max) of a regression result.
        colormap: the colormap name of a regression result.
    """

    classes: tuple[LegendClass, ...] = ()
    band: int = 1
    value_range: tuple[float, float] | None = None
    colormap: str = DEFAULT_COLORMAP

    @staticmethod
    def from_results_config(cfg: InferenceResultsConfig | None) -> Legend | None:
        """The legend of the first classification field, else the first regression field.

        Class values that are not whole numbers (vector results may use strings) are left
        out: a raster stores numbers.
        """
        if cfg is None:
            return None
        if cfg.classification_fields:
            field = cfg.classification_fields[0]
            classes = tuple(
                LegendClass(int(v.value), v.label, v.rgba)
                for v in field.allowed_values
                if isinstance(v.value, int) or (isinstance(v.value, str) and v.value.isdigit())
            )
            return Legend(classes=classes, band=field.band_index or 1)
        if cfg.regression_fields:
            r = cfg.regression_fields[0]
            return Legend(
                band=r.band_index or 1,
                value_range=(r.min_value, r.max_value),
                colormap=r.colormap_name,
            )
        return None

    @staticmethod
    def fields_of(cfg: InferenceResultsConfig | None) -> list[tuple[str, Legend]]:
        """Every field of a raster result that says its band: (name, legend), in band order.

        A model with several heads (the unified format) writes a band per field; each
        field's ``band_index`` says which. Fields without one are left out.
        """
        if cfg is None:
            return []
        out: list[tuple[int, str, Legend]] = []
        for c in cfg.classification_fields or []:
            if c.band_index is None:
                continue
            classes = tuple(
                LegendClass(int(v.value), v.label, v.rgba)
                for v in c.allowed_values
                if isinstance(v.value, int) or (isinstance(v.value, str) and v.value.isdigit())
            )
            out.append((c.band_index, c.property_name, Legend(classes=classes, band=c.band_index)))
        for r in cfg.regression_fields or []:
            if r.band_index is None:
                continue
            legend = Legend(
                band=r.band_index, value_range=(r.min_value, r.max_value), colormap=r.colormap_name
            )
            out.append((r.band_index, r.property_name, legend))
        return [(name, legend) for _, name, legend in sorted(out, key=lambda t: t[0])]

    def class_names(self) -> list[str] | None:
        """Labels indexed by class value (``class_<v>`` for values without a class)."""
        if not self.classes:
            return None
        top = max(c.value for c in self.classes)
        if top > 65535 or min(c.value for c in self.classes) < 0:
            return None
        names = [f"class_{v}" for v in range(top + 1)]
        for c in self.classes:
            names[c.value] = c.label
        return names

    def rgba_of(self) -> dict[int, RGBA]:
        """Class value -> colour."""
        return {c.value: c.rgba for c in self.classes}

    def ramp(self) -> np.ndarray:
        """The regression colormap's 256 colours (viridis for an unknown name, with a warning)."""
        try:
            return colormap(self.colormap)
        except ValueError as e:
            logger.warning("%s; drawing with %s", e, DEFAULT_COLORMAP)
            return colormap(DEFAULT_COLORMAP)
