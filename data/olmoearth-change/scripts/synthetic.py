"""Deterministic synthetic Sentinel-2 L2A scenes of a landscape before and after change.

A 2.56 km square (UTM zone 33N) of rectangular plots, each water, vegetation or bare
ground in the older scene; about a third of the plots turn into another cover by the
recent scene (clearing, regrowth, drying, flooding). The three heads of the model have
something to find: the cover before (``before``), the cover after (``after``), and
whether it changed (``change``). Plots come from recursive splits of the square (no two
alike), reflectances from three endmember spectra in L2A digital numbers with per-plot
brightness, per-pixel texture and sensor noise.

Each scene is one 12-band uint16 GeoTIFF in Sentinel-2's band order (B01 ... B12), named
through LocalFiles' ``raster_item_specs`` in ``data_sources.yaml``.

Usage: python data/olmoearth-change/scripts/synthetic.py
  writes imagery/{before,after}.tif and truth/{before,after,change}.tif.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

CRS = "EPSG:32633"
RESOLUTION = 10.0
BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
WATER, VEGETATION, BARE = 1, 2, 3  # class values of before/after (0: unlabelled)
NO_CHANGE, CHANGE = 1, 2  # class values of change
ENDMEMBERS = {
    WATER: np.array([900, 800, 700, 450, 380, 300, 260, 220, 200, 120, 90, 60]),
    VEGETATION: np.array([320, 380, 650, 330, 1000, 2500, 3000, 3300, 3450, 1200, 1700, 800]),
    BARE: np.array([1100, 1250, 1550, 1900, 2150, 2350, 2500, 2600, 2700, 950, 3200, 2700]),
}
SHARES = {WATER: 0.2, VEGETATION: 0.5, BARE: 0.3}
CHANGED_SHARE = 0.35

# The prediction scene: its top-left corner on the 128 px window grid.
ORIGIN = (499200.0, 5000960.0)
SIZE = 256
SEED = 33


def plots(rng: np.random.Generator, size: int, smallest: int = 14) -> np.ndarray:
    """Plot id per pixel: the square split recursively at random positions."""
    ids = np.zeros((size, size), dtype=np.int32)
    todo = [(0, 0, size, size)]
    n = 0
    while todo:
        r, c, h, w = todo.pop()
        if max(h, w) < 2 * smallest or (max(h, w) < 5 * smallest and rng.random() < 0.35):
            ids[r : r + h, c : c + w] = n
            n += 1
            continue
        if h >= w:
            cut = int(rng.integers(smallest, h - smallest + 1))
            todo += [(r, c, cut, w), (r + cut, c, h - cut, w)]
        else:
            cut = int(rng.integers(smallest, w - smallest + 1))
            todo += [(r, c, h, cut), (r, c + cut, h, w - cut)]
    return ids


def landscape(seed: int, size: int) -> dict[str, np.ndarray]:
    """The covers before and after, and the change, as uint8 rasters (size, size)."""
    rng = np.random.default_rng(seed)
    ids = plots(rng, size)
    n = int(ids.max()) + 1
    classes = np.array(list(SHARES))
    p = np.array(list(SHARES.values()))
    before = rng.choice(classes, size=n, p=p)
    after = before.copy()
    changed = rng.random(n) < CHANGED_SHARE
    for i in np.flatnonzero(changed):
        after[i] = rng.choice([c for c in classes if c != before[i]])
    b, a = before[ids].astype(np.uint8), after[ids].astype(np.uint8)
    change = np.where(b != a, CHANGE, NO_CHANGE).astype(np.uint8)
    return {"before": b, "after": a, "change": change, "plots": ids}


def render(cover: np.ndarray, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (12, h, w) uint16 scene of a cover raster."""
    h, w = cover.shape
    brightness = rng.normal(1.0, 0.08, int(ids.max()) + 1)[ids]
    texture = rng.normal(0.0, 0.04, (h, w))
    out = np.zeros((len(BANDS), h, w))
    for value, spectrum in ENDMEMBERS.items():
        m = cover == value
        out[:, m] = spectrum[:, None] * (brightness[m] + texture[m])[None]
    out += rng.normal(0, 25, out.shape)
    return np.clip(np.rint(out), 1, 10000).astype(np.uint16)


def write_tif(path: Path, array: np.ndarray, origin: tuple[float, float]) -> None:
    """A (bands, h, w) array as a GeoTIFF (rslp's writer: compressed, written atomically)."""
    from rslp.common.postprocessing.geotiff import write_geotiff

    path.parent.mkdir(parents=True, exist_ok=True)
    transform = from_origin(origin[0], origin[1], RESOLUTION, RESOLUTION)
    write_geotiff(path, array, CRS, transform, nodata=0)


def write_landscape(
    imagery: Path, truth: Path | None, origin: tuple[float, float], size: int, seed: int
) -> dict[str, np.ndarray]:
    """Write the two scenes (and, given ``truth``, the three label rasters); return labels."""
    land = landscape(seed, size)
    rng = np.random.default_rng(seed + 1)
    for name in ("before", "after"):
        write_tif(imagery / f"{name}.tif", render(land[name], land["plots"], rng), origin)
    if truth is not None:
        for name in ("before", "after", "change"):
            write_tif(truth / f"{name}.tif", land[name][None], origin)
    return land


def main() -> None:
    """Write this project's imagery and truth."""
    project = Path(__file__).resolve().parents[1]
    land = write_landscape(project / "imagery", project / "truth", ORIGIN, SIZE, SEED)
    share = float((land["change"] == CHANGE).mean())
    print(f"wrote imagery/ and truth/ ({SIZE} x {SIZE} px, {share:.0%} of pixels changed)")


if __name__ == "__main__":
    main()
