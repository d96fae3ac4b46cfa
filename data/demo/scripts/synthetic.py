"""Deterministic synthetic 4-band imagery with lakes whose outlines are known.

Bands B1..B4 stand for blue, green, red and near-infrared (uint8). Water is dark in the
near-infrared; land is bright there, with darker forest and brighter bare-soil patches,
so a model has to use the spectral relation rather than brightness alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_origin
from shapely.affinity import rotate, scale
from shapely.geometry import Point, mapping

CRS = "EPSG:32632"
RESOLUTION = 10.0


@dataclass(frozen=True)
class Lake:
    """An elliptical lake in projected metres."""

    name: str
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float

    def polygon(self):  # type: ignore[no-untyped-def]
        """The lake outline as a shapely polygon in the scene CRS."""
        circle = Point(self.cx, self.cy).buffer(1.0, quad_segs=32)
        return rotate(scale(circle, self.rx, self.ry), self.angle)


# The demo scene: a 1024 x 1024 pixel tile (10.24 km) of UTM zone 32N near Lake Maggiore.
DEMO_ORIGIN = (470000.0, 5100000.0)  # top-left x, y in metres
DEMO_SIZE = 1024
DEMO_LAKES = [
    Lake("lago_alfa", 471900.0, 5098100.0, 900.0, 600.0, 20.0),
    Lake("lago_beta", 475800.0, 5098300.0, 700.0, 700.0, 0.0),
    Lake("lago_gamma", 473300.0, 5094400.0, 1200.0, 500.0, -35.0),
    Lake("lago_delta", 477600.0, 5093100.0, 600.0, 900.0, 60.0),
    Lake("lago_epsilon", 471500.0, 5091400.0, 500.0, 350.0, 10.0),
]


def _smooth_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Bilinear-upsampled random field in [0, 1]."""
    n = size // cell + 2
    coarse = rng.random((n, n))
    idx = np.arange(size) / cell
    i0 = np.floor(idx).astype(int)
    f = idx - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def render(
    origin: tuple[float, float], size: int, lakes: list[Lake], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene.

    Returns:
        (image uint8 (4, size, size), water mask uint8 (size, size): 1 water, 0 land).
    """
    rng = np.random.default_rng(seed)
    transform = from_origin(origin[0], origin[1], RESOLUTION, RESOLUTION)
    water = rasterize(
        [(lake.polygon(), 1) for lake in lakes],
        out_shape=(size, size),
        transform=transform,
        dtype="uint8",
    )
    veg = _smooth_noise(rng, size, 64)
    soil = (_smooth_noise(rng, size, 32) > 0.7).astype(float)
    forest = (_smooth_noise(rng, size, 48) > 0.65).astype(float)
    turbid = _smooth_noise(rng, size, 40)
    img = np.zeros((4, size, size), dtype=float)
    # Land: vegetation mix, brighter bare soil, darker forest (dark in visible, bright NIR).
    img[0] = 60 + 20 * veg + 50 * soil - 25 * forest
    img[1] = 80 + 30 * veg + 40 * soil - 30 * forest
    img[2] = 70 + 20 * veg + 70 * soil - 35 * forest
    img[3] = 150 + 60 * veg - 20 * soil + 10 * forest
    # Water: blue-green, some turbid areas brighter in the visible, always dark NIR.
    w = water.astype(bool)
    img[0][w] = (70 + 50 * turbid)[w]
    img[1][w] = (65 + 45 * turbid)[w]
    img[2][w] = (40 + 50 * turbid)[w]
    img[3][w] = (20 + 25 * turbid)[w]
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 1, 255).astype(np.uint8), water


def write_geotiff(path: Path, array: np.ndarray, origin: tuple[float, float]) -> None:
    """Write a (bands, h, w) uint8 array as a deflate-compressed GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype,
        crs=CRS,
        transform=from_origin(origin[0], origin[1], RESOLUTION, RESOLUTION),
        compress="deflate",
        predictor=2,
        tiled=True,
    ) as dst:
        dst.write(array)
    tmp.replace(path)


def lakes_geojson(lakes: list[Lake]) -> dict:
    """The lake outlines as an RFC 7946 FeatureCollection in lon/lat."""
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    feats = []
    for lake in lakes:
        poly = shapely.transform(
            lake.polygon(), lambda c: np.column_stack(to_ll.transform(c[:, 0], c[:, 1]))
        )
        feats.append(
            {
                "type": "Feature",
                "properties": {"name": lake.name, "class": "water"},
                "geometry": mapping(poly),
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def random_lakes(
    rng: np.random.Generator, origin: tuple[float, float], size: int, n: int
) -> list[Lake]:
    """Random elliptical lakes inside a scene (for training scenes)."""
    extent = size * RESOLUTION
    lakes = []
    for i in range(n):
        rx, ry = rng.uniform(200, 1100), rng.uniform(200, 900)
        cx = origin[0] + rng.uniform(0.1, 0.9) * extent
        cy = origin[1] - rng.uniform(0.1, 0.9) * extent
        lakes.append(Lake(f"train_{i}", cx, cy, rx, ry, float(rng.uniform(-90, 90))))
    return lakes


def main() -> None:
    """Write the demo imagery and the truth outlines next to this script's project."""
    project = Path(__file__).resolve().parents[1]
    image, _ = render(DEMO_ORIGIN, DEMO_SIZE, DEMO_LAKES, seed=7)
    write_geotiff(project / "imagery" / "scene.tif", image, DEMO_ORIGIN)
    truth = project / "truth" / "lakes.geojson"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps(lakes_geojson(DEMO_LAKES), indent=1) + "\n")
    print(f"wrote {project / 'imagery' / 'scene.tif'} and {truth}")


if __name__ == "__main__":
    main()
