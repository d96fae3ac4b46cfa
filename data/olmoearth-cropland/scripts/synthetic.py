"""Deterministic synthetic Sentinel-2 L2A time series over a smallholder farming landscape.

The scene stands in for a corner of central Togo (UTM zone 31N, around 1.1 E, 8.6 N) in the
2020 growing season, seen on three dates:

- 2020-05-14, planting: crop fields are tilled red soil, the savanna is greening up;
- 2020-08-12, mid season: crops are at their peak, the savanna is green too;
- 2020-11-05, after harvest: crop fields hold dry residue, the savanna is drying.

A single date does not separate crop from savanna well (both are green in August); the
change across the three dates does. Parcels are a Voronoi tessellation; each is one of
crop, savanna, woodland or settlement. Reflectances are mixtures of vegetation, laterite
soil, dry residue and roof/road spectra in Sentinel-2 L2A digital numbers (reflectance x
10000), with the 20 m and 60 m bands at their own resolution (block means, repeated to
10 m pixels), a little haze per date, and sensor noise.

Each scene is one 12-band uint16 GeoTIFF with the bands in Sentinel-2's own order (B01,
B02, ..., B8A, B09, B11, B12): dataset.json names them through LocalFiles'
``raster_item_specs`` (files alone would give B1..B12).

Usage: python data/olmoearth-cropland/scripts/synthetic.py
  writes imagery/s2_<date>.tif (3 scenes) and truth/cropland.tif (1 not crop, 2 crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32631"
RESOLUTION = 10.0
# File band order (Sentinel-2 numbering), and each band's native resolution in metres.
BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
NATIVE_RES = {"B01": 60, "B09": 60} | {b: 20 for b in ("B05", "B06", "B07", "B8A", "B11", "B12")}

# Endmember spectra in L2A digital numbers, in BANDS order.
GREEN_VEG = np.array([300, 350, 620, 310, 950, 2600, 3100, 3400, 3500, 1250, 1750, 820])
LATERITE = np.array([900, 1000, 1400, 1950, 2200, 2400, 2550, 2650, 2750, 900, 3300, 2650])
DRY_RESIDUE = np.array([700, 820, 1120, 1420, 1800, 2100, 2300, 2420, 2520, 800, 3050, 2250])
BUILT = np.array([1200, 1300, 1420, 1530, 1650, 1800, 1900, 2000, 2060, 700, 2400, 2150])

NOT_CROP, CROP = 1, 2  # the label values (0 is unlabelled)
SAVANNA, WOODLAND, SETTLEMENT, FIELD = range(4)  # land cover of a parcel
# Per land cover: (greenness, share of dry residue in the non-green part) per date.
PHENOLOGY = {
    FIELD: [(0.08, 0.1), (0.78, 0.3), (0.22, 0.85)],
    SAVANNA: [(0.42, 0.7), (0.62, 0.6), (0.40, 0.9)],
    WOODLAND: [(0.66, 0.8), (0.82, 0.8), (0.70, 0.9)],
    SETTLEMENT: [(0.10, 0.3), (0.16, 0.3), (0.10, 0.3)],
}
COVER_SHARES = {FIELD: 0.45, SAVANNA: 0.33, WOODLAND: 0.14, SETTLEMENT: 0.08}


@dataclass(frozen=True)
class Scene:
    """One acquisition: its date (file name) and the haze added to the short bands."""

    date: str
    haze: float


SCENES = [Scene("20200514", 120.0), Scene("20200812", 60.0), Scene("20201105", 30.0)]

# The prediction scene: 256 x 256 px (2.56 km) whose top-left corner lies on the 128 px
# window grid (multiples of 1280 m), so the request's windows fall on whole scene quarters.
ORIGIN = (290560.0, 952320.0)  # top-left x, y in EPSG:32631 metres
SIZE = 256
SEED = 2020


def _smooth_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """A bilinear-upsampled random field in [0, 1]."""
    n = size // cell + 2
    coarse = rng.random((n, n))
    idx = np.arange(size) / cell
    i0 = np.floor(idx).astype(int)
    f = idx - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def parcels(rng: np.random.Generator, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A Voronoi tessellation into ``n`` parcels with slightly wobbly edges.

    Returns:
        (parcel id per pixel (size, size) int, land cover per parcel (n,) int).
    """
    seeds = rng.uniform(0, size, (n, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    wobble = 3.0 * (_smooth_noise(rng, size, 12) - 0.5)
    best = np.full((size, size), np.inf)
    ids = np.zeros((size, size), dtype=np.int32)
    for i, (sy, sx) in enumerate(seeds):
        d = np.hypot(yy - sy, xx - sx) + wobble
        closer = d < best
        best[closer] = d[closer]
        ids[closer] = i
    covers = np.array(list(COVER_SHARES))
    probs = np.array(list(COVER_SHARES.values()))
    return ids, rng.choice(covers, size=n, p=probs / probs.sum())


def _at_native_resolution(band: np.ndarray, factor: int) -> np.ndarray:
    """Block means over ``factor`` px squares, repeated back to 10 m pixels."""
    if factor == 1:
        return band
    size = band.shape[0]
    n = -(-size // factor)
    padded = np.pad(band, ((0, n * factor - size), (0, n * factor - size)), mode="edge")
    blocks = padded.reshape(n, factor, n, factor).mean(axis=(1, 3))
    return np.repeat(np.repeat(blocks, factor, axis=0), factor, axis=1)[:size, :size]


def render(seed: int, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Render the three scenes of one landscape.

    Returns:
        (one uint16 (12, size, size) array per scene in SCENES order, labels uint8
        (size, size): 1 not crop, 2 crop).
    """
    rng = np.random.default_rng(seed)
    ids, covers = parcels(rng, size, max(8, size * size // 450))
    cover = covers[ids]
    labels = np.where(cover == FIELD, CROP, NOT_CROP).astype(np.uint8)
    # Per parcel: sowing date and vigour (fields differ from each other), per pixel texture.
    parcel_shift = rng.normal(0, 0.06, len(covers))[ids]
    texture = _smooth_noise(rng, size, 6) - 0.5
    trees = _smooth_noise(rng, size, 9) > 0.72  # scattered shea / parkland trees
    images = []
    for t, scene in enumerate(SCENES):
        green = np.zeros((size, size))
        dry = np.zeros((size, size))
        for c, stages in PHENOLOGY.items():
            g, d = stages[t]
            green[cover == c] = g
            dry[cover == c] = d
        green = green + parcel_shift + 0.12 * texture
        green[trees & (cover != SETTLEMENT)] += 0.25
        green = np.clip(green, 0.02, 0.95)
        dry = np.clip(dry + 0.1 * texture, 0, 1)
        bare = (1 - dry)[None] * LATERITE[:, None, None] + dry[None] * DRY_RESIDUE[:, None, None]
        refl = green[None] * GREEN_VEG[:, None, None] + (1 - green)[None] * bare
        built = cover == SETTLEMENT
        refl[:, built] = 0.6 * refl[:, built] + 0.4 * BUILT[:, None]
        haze = scene.haze * _smooth_noise(rng, size, 64)
        for b, name in enumerate(BANDS):
            if name in ("B01", "B02", "B03", "B04"):
                refl[b] += haze * (1.4 if name in ("B01", "B02") else 0.8)
            # Sensor noise at the band's own resolution (averaged in its coarser pixels).
            refl[b] += rng.normal(0, 10, (size, size))
            refl[b] = _at_native_resolution(refl[b], NATIVE_RES.get(name, 10) // 10)
        images.append(np.clip(np.rint(refl), 1, 10000).astype(np.uint16))
    return images, labels


def write_geotiff(
    path: Path, array: np.ndarray, origin: tuple[float, float], nodata: int | None = None
) -> None:
    """Write a (bands, h, w) array as a deflate-compressed tiled GeoTIFF, atomically."""
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
        zlevel=9,
        tiled=True,
        interleave="band",
        nodata=nodata,
    ) as dst:
        dst.write(array)
    tmp.replace(path)


def scene_name(scene: Scene) -> str:
    """The file name of a scene (what dataset.json's raster_item_specs list)."""
    return f"s2_{scene.date}.tif"


def write_scenes(out_dir: Path, origin: tuple[float, float], size: int, seed: int) -> np.ndarray:
    """Write the three scenes of a landscape into ``out_dir``; returns its labels."""
    images, labels = render(seed, size)
    for scene, image in zip(SCENES, images, strict=True):
        write_geotiff(out_dir / scene_name(scene), image, origin, nodata=0)  # as L2A
    return labels


def main() -> None:
    """Write the project's imagery and the truth raster next to this script's project."""
    project = Path(__file__).resolve().parents[1]
    labels = write_scenes(project / "imagery", ORIGIN, SIZE, SEED)
    write_geotiff(project / "truth" / "cropland.tif", labels[None], ORIGIN)
    crop = float((labels == CROP).mean())
    print(f"wrote {len(SCENES)} scenes to {project / 'imagery'} and truth/cropland.tif")
    print(f"crop share of the scene: {crop:.1%}")


if __name__ == "__main__":
    main()
