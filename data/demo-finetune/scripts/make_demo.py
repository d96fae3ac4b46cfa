"""Make the fine-tune demo's data: a hazy target scene, its lakes, and point annotations.

The shipped checkpoint is the raster demo's, trained on clear imagery; this scene is hazy
(brighter, flatter), so that checkpoint is weak here. Annotators labeled points on clear
water and clear land (not on shores) in four task regions, one per quarter of the scene.

Usage: python data/demo-finetune/scripts/make_demo.py
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import numpy as np
from pyproj import Transformer

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT.parent / "demo" / "scripts"))
from synthetic import (  # noqa: E402
    CRS,
    RESOLUTION,
    lakes_geojson,
    random_lakes,
    render,
    write_geotiff,
)

ORIGIN = (490000.0, 5080000.0)  # another place in UTM 32N than the demo's scene
SIZE = 512
# Per band (B1..B4) gain and offset of the target sensor against the training imagery's.
GAIN = np.array([0.55, 0.55, 0.55, 0.4])[:, None, None]
OFFSET = np.array([95.0, 95.0, 95.0, 40.0])[:, None, None]
POINTS_PER_TASK = 90
TIME = ("2024-06-01T00:00:00+00:00", "2024-06-30T23:59:59+00:00")


def hazy(image: np.ndarray) -> np.ndarray:
    """The scene as seen through haze."""
    return np.clip(image.astype(float) * GAIN + OFFSET, 1, 255).astype(np.uint8)


def clear_pixels(mask: np.ndarray, value: int, margin: int = 3) -> np.ndarray:
    """(row, col) of pixels whose whole (2 * margin + 1) square has ``value``."""
    ok = mask == value
    size = mask.shape[0]
    out = ok.copy()
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            shifted = np.zeros_like(ok)
            ys = slice(max(dy, 0), size + min(dy, 0))
            yd = slice(max(-dy, 0), size + min(-dy, 0))
            xs = slice(max(dx, 0), size + min(dx, 0))
            xd = slice(max(-dx, 0), size + min(-dx, 0))
            shifted[yd, xd] = ok[ys, xs]
            out &= shifted
    return np.argwhere(out)


def lonlat(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of the scene in lon/lat."""
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    x = ORIGIN[0] + (cols + 0.5) * RESOLUTION
    y = ORIGIN[1] - (rows + 0.5) * RESOLUTION
    lon, lat = to_ll.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def box_lonlat(r0: int, c0: int, r1: int, c1: int) -> list[list[float]]:
    """A pixel box of the scene as a closed lon/lat ring."""
    rows = np.array([r0, r0, r1, r1, r0], dtype=float) - 0.5
    cols = np.array([c0, c1, c1, c0, c0], dtype=float) - 0.5
    lon, lat = lonlat(rows, cols)
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def main() -> None:
    """Write imagery/, truth/, annotations/ and prediction/ of the demo."""
    rng = np.random.default_rng(11)
    lakes = random_lakes(rng, ORIGIN, SIZE, 7)
    image, water = render(ORIGIN, SIZE, lakes, seed=11)
    write_geotiff(PROJECT / "imagery" / "scene.tif", hazy(image), ORIGIN)
    truth = PROJECT / "truth" / "lakes.geojson"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps(lakes_geojson(lakes), indent=1) + "\n")

    tasks, feats = [], []
    half = SIZE // 2
    for q, (r0, c0) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        tid = str(uuid.UUID(int=rng.integers(0, 2**63) << 64 | q))
        ring = box_lonlat(r0, c0, r0 + half, c0 + half)
        tasks.append(
            {
                "type": "Feature",
                "properties": {
                    "oe_annotations_task_id": tid,
                    "oe_start_time": TIME[0],
                    "oe_end_time": TIME[1],
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
        sub = water[r0 : r0 + half, c0 : c0 + half]
        for value in (0, 1):
            px = clear_pixels(sub, value)
            px = px[(px[:, 0] > 1) & (px[:, 0] < half - 2) & (px[:, 1] > 1) & (px[:, 1] < half - 2)]
            take = px[rng.choice(len(px), size=min(len(px), POINTS_PER_TASK // 2), replace=False)]
            lon, lat = lonlat(take[:, 0] + r0, take[:, 1] + c0)
            for a, b in zip(lon, lat, strict=True):
                feats.append(
                    {
                        "type": "Feature",
                        "properties": {
                            "oe_annotations_task_id": tid,
                            "oe_labels": {"label": value},
                        },
                        "geometry": {
                            "type": "Point",
                            "coordinates": [round(float(a), 7), round(float(b), 7)],
                        },
                    }
                )
    ann = PROJECT / "annotations"
    ann.mkdir(exist_ok=True)
    for name, features in (
        ("annotation_task_features.geojson", tasks),
        ("annotation_features.geojson", feats),
    ):
        doc = {"type": "FeatureCollection", "features": features}
        (ann / name).write_text(json.dumps(doc, indent=1) + "\n")
    request = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "hazy-lakes",
                "properties": {"es_start_time": TIME[0], "es_end_time": TIME[1]},
                "geometry": {
                    "type": "Polygon",
                    # inside the 128 px window grid cells the scene covers whole
                    "coordinates": [box_lonlat(100, 28, 476, 404)],
                },
            }
        ],
    }
    (PROJECT / "prediction").mkdir(exist_ok=True)
    (PROJECT / "prediction" / "hazy-lakes.geojson").write_text(json.dumps(request, indent=1) + "\n")
    print(f"wrote the scene, {len(tasks)} tasks and {len(feats)} annotations in {PROJECT}")


if __name__ == "__main__":
    main()
