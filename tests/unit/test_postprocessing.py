from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from rslp.common.postprocessing import CombineGeotiff, NoopRaster, OutputLayer, WindowResult
from rslp.common.postprocessing.geotiff import mosaic_to_cog, write_geotiff

LAYER = OutputLayer("output", "raster", ["output"], "uint8", 255, ["land", "water"])


def window(name: str, col0: int, row0: int, value: int, size: int = 16) -> WindowResult:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    return WindowResult(
        partition_id="p",
        name=name,
        crs="EPSG:32632",
        resolution=10.0,
        bounds=(col0, row0, col0 + size, row0 + size),
        time_range=(t, t),
        feature_ids=["f"],
        raster=np.full((1, size, size), value, dtype=np.uint8),
    )


def test_window_stage_georeferences_the_output(tmp_path: Path) -> None:
    (path,) = NoopRaster().process_window(window("a", 47000, -510000, 1), LAYER, tmp_path)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32632
        assert src.transform.c == 470000.0 and src.transform.f == 5100000.0
        assert src.nodata == 255
        assert src.tags()["class_1"] == "water"
        assert (src.read(1) == 1).all()
    assert not list(tmp_path.glob("*.tmp"))


def test_partition_mosaic_first_wins_and_class_zero_is_data(tmp_path: Path) -> None:
    stage = CombineGeotiff()
    a = stage.process_window(window("a", 47000, -510000, 0), LAYER, tmp_path / "w")[0]
    b = stage.process_window(window("b", 47008, -510000, 1), LAYER, tmp_path / "w")[0]
    gap = stage.process_window(window("c", 47000, -509968, 1), LAYER, tmp_path / "w")[0]
    (cog,) = stage.process_partition([b, gap, a], LAYER, tmp_path / "p", "p")
    with rasterio.open(cog) as src:
        arr = src.read(1)
        assert src.nodata == 255
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert arr.shape == (48, 24)
        assert (arr[:16, :16] == 0).all()  # class 0 kept, and "a" sorts first in the overlap
        assert (arr[:16, 16:] == 1).all()
        assert (arr[16:32] == 255).all()  # no window there: nodata
    again = stage.process_partition([a, b, gap], LAYER, tmp_path / "p2", "p")[0]
    assert again.read_bytes() == cog.read_bytes()


def test_dataset_mosaic_reprojects_other_zones(tmp_path: Path) -> None:
    big = np.ones((1, 40, 40), dtype=np.uint8)
    small = np.zeros((1, 10, 10), dtype=np.uint8)
    p1 = write_geotiff(
        tmp_path / "a.tif", big, "EPSG:32632", from_origin(700000, 5100000, 10, 10), 255
    )
    # The same place in the neighbouring zone (33N) is far west of its central meridian.
    p2 = write_geotiff(
        tmp_path / "b.tif", small, "EPSG:32633", from_origin(230000, 5110000, 10, 10), 255
    )
    out = mosaic_to_cog([p1, p2], tmp_path / "out.tif", 255)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32632
        assert abs(src.transform.a - 10) < 1e-9
        assert (src.read(1) != 255).sum() >= 1600


def test_window_stage_clips_to_request_and_maps_values(tmp_path: Path) -> None:
    import shapely.geometry as sg

    from rslp.common.partitioners.projection import PixelGrid
    from rslp.request import RequestFeature

    w = window("a", 47000, -510000, 2, size=32)
    grid = PixelGrid("EPSG:32632", 10)
    # A request covering the left half of the window.
    west = [
        grid.pixel_to_lonlat(c, r)
        for c, r in [(47000, -510000), (47016, -510000), (47016, -509968), (47000, -509968)]
    ]
    t = w.time_range
    w.request_features = [RequestFeature("half", sg.Polygon(west), t, {})]
    stage = NoopRaster(clip_to_request=True, value_map={2: 1})
    (path,) = stage.process_window(w, LAYER, tmp_path)
    with rasterio.open(path) as src:
        arr = src.read(1)
    assert (arr[:, :15] == 1).all()  # mapped 2 -> 1 inside the request
    assert (arr[:, 17:] == 255).all()  # nodata outside


def test_dataset_stage_writes_a_quicklook_with_legend(tmp_path: Path) -> None:
    from PIL import Image

    stage = CombineGeotiff()
    a = stage.process_window(window("a", 47000, -510000, 1), LAYER, tmp_path / "w")[0]
    part = stage.process_partition([a], LAYER, tmp_path / "p", "p")[0]
    outs = stage.process_dataset([part], LAYER, tmp_path / "r")
    assert [p.name for p in outs] == ["result.tif", "result.png"]
    with Image.open(outs[1]) as img:
        rgb = img.convert("RGB")
        assert rgb.getpixel((2, 2)) == (30, 144, 255)  # class 1 (water) colour
        assert img.width > 16  # raster plus legend


def test_failed_window_stage_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    from rslp.fsutil import fresh_dir

    final = tmp_path / "windows"
    staging = fresh_dir(final)
    NoopRaster().process_window(window("a", 47000, -510000, 1), LAYER, staging)
    # The stage dies here (no publish_dir): the final directory does not exist.
    assert not final.exists()
    assert staging.name.startswith(".")


def test_class_maps_become_small_unsigned_integers_with_a_colour_table(tmp_path: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from rslp.common.postprocessing.geotiff import as_class_map, write_cog

    nan = float("nan")
    scores = np.array([[[0.0, 1.0], [2.0, nan]]], dtype=np.float32)
    out, nodata = as_class_map(scores, nan, [0, 1, 2])
    assert out.dtype == np.uint8 and nodata == 255.0
    assert out.tolist() == [[[0, 1], [2, 255]]]
    # Already the smallest type: unchanged; a nodata that fits is kept.
    same = np.array([[[0, 1]]], dtype=np.uint8)
    assert as_class_map(same, 255.0, [0, 1])[0] is same
    kept = np.array([[[0.0, 7.0], [1.0, 1.0]]], dtype=np.float32)
    assert as_class_map(kept, 7.0, [0, 1])[1] == 7.0
    # Many classes: uint16; not a class map (fractions, negatives): left alone.
    wide = np.array([[[0.0, 300.0]]], dtype=np.float32)
    assert as_class_map(wide, None, list(range(301)))[0].dtype == np.uint16
    frac = np.array([[[0.25, 1.0]]], dtype=np.float32)
    assert as_class_map(frac, nan, [0, 1])[0] is frac
    assert as_class_map(-kept, nan, [0, 1])[0].dtype == np.float32
    assert as_class_map(scores, nan, [])[0] is scores  # no classes: a regression
    # Written as a COG: integer, nodata and a colour table a GIS shows.
    path = write_cog(
        tmp_path / "c.tif", out, "EPSG:32632", from_origin(0, 20, 10, 10), nodata, ["a", "b", "c"]
    )
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        cmap = src.colormap(1)
        assert len({cmap[0], cmap[1], cmap[2]}) == 3
    wide_out, wide_nd = as_class_map(wide, None, list(range(301)))
    names = [f"c{i}" for i in range(301)]
    path = write_cog(
        tmp_path / "w.tif", wide_out, "EPSG:32632", from_origin(0, 20, 10, 10), wide_nd, names
    )
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint16" and src.colormap(1)[300][3] == 255
