"""Map WGS84 geometries to the pixel grid of a projected CRS (rslearn's convention).

rslearn windows are defined by a projection ``(crs, x_res, -y_res)`` and integer pixel
bounds ``(col0, row0, col1, row1)`` where ``col = x / x_res`` and ``row = y / -y_res``.

Geometries that cross the antimeridian are handled in two forms: *unwrapped* (continuous,
longitudes may exceed 180) for projecting into one UTM zone, and *split* (RFC 7946: parts
on each side, all longitudes within [-180, 180]) for lon/lat grids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

PixelBounds = tuple[int, int, int, int]


@dataclass(frozen=True)
class PixelGrid:
    """A projected CRS and a square resolution, with conversions to and from WGS84.

    Attributes:
        crs: the CRS as ``EPSG:<code>`` (or any string pyproj accepts).
        resolution: CRS units per pixel (x); y pixels are ``-resolution``.
    """

    crs: str
    resolution: float

    def to_pixels(self, geom: BaseGeometry) -> BaseGeometry:
        """Project a WGS84 lon/lat geometry to pixel coordinates of this grid."""
        fwd = _transformer("EPSG:4326", self.crs)
        res = self.resolution

        def f(coords: np.ndarray) -> np.ndarray:
            x, y = fwd.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([np.asarray(x) / res, -np.asarray(y) / res])

        return shapely.transform(geom, f)

    def pixels_to_lonlat(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Convert arrays of pixel coordinates of this grid to WGS84 lon/lat arrays."""
        inv = _transformer(self.crs, "EPSG:4326")
        lon, lat = inv.transform(cols * self.resolution, -rows * self.resolution)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    def pixel_to_lonlat(self, col: float, row: float) -> tuple[float, float]:
        """Convert one pixel coordinate of this grid to WGS84 lon/lat."""
        lon, lat = self.pixels_to_lonlat(np.array([col]), np.array([row]))
        return float(lon[0]), float(lat[0])


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def crosses_antimeridian(geom: BaseGeometry) -> bool:
    """Whether a lon/lat geometry spans more than 180 degrees of longitude.

    A request that covers more than half the globe in longitude is taken to cross the
    antimeridian instead (RFC 7946 geometries are never that wide otherwise).
    """
    minx, _, maxx, _ = geom.bounds
    return maxx - minx > 180.0


def unwrap(geom: BaseGeometry) -> BaseGeometry:
    """A continuous version of an antimeridian-crossing geometry (lon < 0 shifted +360)."""
    if not crosses_antimeridian(geom):
        return geom

    def f(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0] = np.where(out[:, 0] < 0, out[:, 0] + 360.0, out[:, 0])
        return out

    return shapely.make_valid(shapely.transform(geom, f))


def split_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """The RFC 7946 form: parts east of 180 moved back by -360, all lon in [-180, 180]."""
    if not crosses_antimeridian(geom):
        return geom
    u = unwrap(geom)
    west = shapely.intersection(u, shapely.box(-180.0, -90.0, 180.0, 90.0))
    east = shapely.intersection(u, shapely.box(180.0, -90.0, 540.0, 90.0))
    east = shapely.transform(east, lambda c: c - np.array([360.0, 0.0]))
    return shapely.union(west, east)


# Longest lon/lat edge projected as a straight line (about 100 m).
SEGMENT_DEG = 0.001


def lonlat_to_pixels(geom: BaseGeometry, grid: PixelGrid) -> BaseGeometry:
    """A lon/lat geometry in ``grid``'s pixels: unwrapped, edges split every ``SEGMENT_DEG``.

    Splitting edges first makes the straight edges in pixel space follow the lon/lat
    outline (as drawn on a map) to within millimetres.
    """
    return grid.to_pixels(shapely.segmentize(unwrap(geom), SEGMENT_DEG))


def utm_crs_for(lon: float, lat: float) -> str:
    """The UTM zone CRS for a point (UPS north/south beyond UTM's latitude limits).

    Args:
        lon: longitude in degrees (any value; wrapped into [-180, 180)).
        lat: latitude in degrees.

    Returns:
        ``EPSG:326zz`` (north), ``EPSG:327zz`` (south), ``EPSG:32661`` or ``EPSG:32761`` (UPS).
    """
    if lat >= 84.0:
        return "EPSG:32661"
    if lat < -80.0:
        return "EPSG:32761"
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def bounds_of(geom: BaseGeometry) -> PixelBounds:
    """Integer pixel bounds that cover ``geom`` (floor of the minimum, ceil of the maximum)."""
    minx, miny, maxx, maxy = geom.bounds
    x0, y0 = math.floor(minx), math.floor(miny)
    x1, y1 = max(math.ceil(maxx), x0 + 1), max(math.ceil(maxy), y0 + 1)
    return x0, y0, x1, y1


def crs_tag(crs: str) -> str:
    """A short, path-safe tag for a CRS (``EPSG:32632`` -> ``epsg32632``)."""
    return "".join(ch for ch in crs.lower() if ch.isalnum())
