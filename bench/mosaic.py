"""Mosaicking 1,000 window GeoTIFFs into a partition COG.

Ours (:func:`rslp.common.postprocessing.geotiff.mosaic_to_cog`) against
``rasterio.merge.merge`` followed by a COG copy, on the same inputs in the same run.

Run: .venv/bin/python -m bench.mosaic
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.merge
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from bench.common import best_of
from rslp.common.postprocessing.geotiff import mosaic_to_cog, write_geotiff

N_X, N_Y, SIZE = 40, 25, 128


def make_windows(d: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_Y):
        for j in range(N_X):
            arr = rng.integers(0, 3, size=(1, SIZE, SIZE), dtype=np.uint8)
            t = from_origin(500000 + j * SIZE * 10, 5000000 - i * SIZE * 10, 10, 10)
            paths.append(
                write_geotiff(
                    d / f"w_{i:03d}_{j:03d}.tif", arr, "EPSG:32632", t, 255, ["a", "b", "c"]
                )
            )
    return paths


def baseline(paths: list[Path], out: Path) -> Path:
    srcs = [rasterio.open(p) for p in paths]
    array, transform = rasterio.merge.merge(srcs, nodata=255, method="first")
    profile = {
        **srcs[0].profile,
        "width": array.shape[2],
        "height": array.shape[1],
        "transform": transform,
    }
    for s in srcs:
        s.close()
    profile.update(driver="GTiff")
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(array)
        with mem.open() as src:
            rasterio.shutil.copy(
                src,
                out,
                driver="COG",
                compress="DEFLATE",
                overview_resampling="nearest",
                blocksize=256,
            )
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        paths = make_windows(d / "w")
        t_ours, _ = best_of(lambda: mosaic_to_cog(paths, d / "ours.tif", 255, ["a", "b", "c"]))
        t_base, _ = best_of(lambda: baseline(paths, d / "base.tif"))
        with rasterio.open(d / "ours.tif") as a, rasterio.open(d / "base.tif") as b:
            assert (a.read() == b.read()).all() and a.transform == b.transform
    print(f"mosaic {len(paths)} window GeoTIFFs ({SIZE} px) into a COG:")
    print(f"  ours                  {t_ours:.3f} s")
    print(f"  rasterio.merge + COG  {t_base:.3f} s")
    print(f"  ratio ours/baseline = {t_ours / t_base:.3f}")


if __name__ == "__main__":
    main()
