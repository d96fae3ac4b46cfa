"""The reference runner's classes and init_args, as this runner implements them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
from PIL import Image

from rslp.common.partitioners import (
    ChunkPartitioner,
    GridPartitioner,
    OutputProjection,
    ReprojectionPartitioner,
)
from rslp.common.partitioners.interface import FeatureFrame
from rslp.common.postprocessing import (
    CombineAndDeduplicateGeojson,
    CombineGeojson,
    CombineGeotiff,
    OutputLayer,
    SimplifyPolygons,
    VectorFeature,
    WindowResult,
)
from rslp.common.postprocessing.legend import Legend, LegendClass, colormap
from rslp.common.postprocessing.vector import RequestCombineGeojson
from rslp.plugins import SEED_ALIASES, load_class
from rslp.request import RequestFeature

T = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC))
UTM = OutputProjection(resolution=10)
AREA = sg.box(8.60, 46.00, 8.66, 46.03)


def feat(fid: str, geom: sg.base.BaseGeometry, **props: object) -> RequestFeature:
    return RequestFeature(fid, geom, T, dict(props))


def test_every_reference_class_path_resolves_to_ours() -> None:
    ref = {k: v for k, v in SEED_ALIASES.items() if k.startswith("olmoearth_run.")}
    names = {k.rsplit(".", 1)[1] for k in ref}
    assert {
        "NoopPartitioner",
        "FixedWindowPartitioner",
        "GridPartitioner",
        "ReprojectionPartitioner",
        "ChunkPartitioner",
        "NoopRaster",
        "CombineGeotiff",
        "CombineGeojson",
        "CombineAndDeduplicateGeojson",
        "SimplifyPolygons",
    } <= names
    for path in ref:
        assert load_class(path).__module__.startswith("rslp.")
        seed = path.replace("olmoearth_run.runner.tools.", "esrun.tools.")
        assert load_class(seed).__module__.startswith("rslp.")


def test_grid_overlap_grows_windows_and_ownership_stays_with_the_cell() -> None:
    f = feat("a", AREA)
    plain = GridPartitioner(64, output_projection=None)
    grown = GridPartitioner(64, overlap_size=8)
    large = GridPartitioner(0.02)
    parts = large.partition_request([f])
    a = sorted(w.bounds for p in parts for w in plain.partition_windows(p, UTM))
    b = sorted(w.bounds for p in parts for w in grown.partition_windows(p, UTM))
    assert len(a) == len(b) == len(set(b))  # still one window per cell, owned once
    assert b == [(x0 - 8, y0 - 8, x1 + 8, y1 + 8) for x0, y0, x1, y1 in a]
    assert grown.estimate_windows([f], UTM).max_side == 80
    with pytest.raises(ValueError, match="overlap_size"):
        GridPartitioner(64, overlap_size=-1)


def test_grid_clip_shrinks_windows_to_the_geometry() -> None:
    tri = sg.Polygon([(8.60, 46.00), (8.66, 46.00), (8.60, 46.03)])
    f = feat("t", tri)
    (part,) = GridPartitioner(1.0).partition_request([f])
    cells = {w.bounds for w in GridPartitioner(64).partition_windows(part, UTM)}
    clipped = {w.bounds for w in GridPartitioner(64, clip=True).partition_windows(part, UTM)}
    assert len(clipped) == len(cells)
    frame = FeatureFrame(f, UTM)
    px = frame.pixels()
    shrunk = 0
    for b in clipped:
        assert b[2] - b[0] <= 64 and b[3] - b[1] <= 64
        box = sg.box(*b)
        assert box.intersects(px)
        shrunk += (b[2] - b[0]) * (b[3] - b[1]) < 64 * 64
    assert shrunk > 0  # cells along the diagonal edge


def test_grid_partition_level_ignores_overlap_and_clip(caplog: pytest.LogCaptureFixture) -> None:
    f = feat("a", AREA)
    assert [
        p.id for p in GridPartitioner(0.02, overlap_size=0.01, clip=True).partition_request([f])
    ] == [p.id for p in GridPartitioner(0.02).partition_request([f])]
    assert "ignores overlap_size and clip" in caplog.text


def test_chunk_partitioner_groups_features_in_order() -> None:
    fs = [feat(f"f{i}", sg.Point(8.6 + i * 0.01, 46.0)) for i in range(5)]
    c = ChunkPartitioner(num_geometries_per_partition=2)
    parts = c.partition_request(fs)
    assert [[f.id for f in p.features] for p in parts] == [["f0", "f1"], ["f2", "f3"], ["f4"]]
    assert [p.id.split("-")[0] for p in parts] == ["chunk0", "chunk1", "chunk2"]
    assert c.estimate_partitions(fs) == 3
    windows = [w for p in parts for w in c.partition_windows(p, UTM)]
    assert len(windows) == 5  # one per feature, on its bounds
    with pytest.raises(ValueError, match="num_geometries_per_partition"):
        ChunkPartitioner(0)


def test_reprojection_partitioner_is_window_level_only() -> None:
    f = feat("a", AREA)
    r = ReprojectionPartitioner(use_utm=True)
    assert ReprojectionPartitioner.LEVELS == ("windows",)
    with pytest.raises(ValueError, match="only at the window level"):
        r.partition_request([f])
    (part,) = ChunkPartitioner(10).partition_request([f])
    (w,) = r.partition_windows(part, r.window_projection(OutputProjection(resolution=20)))
    assert w.crs == "EPSG:32632" and w.resolution == 20  # use_utm alone: the project's resolution


def _vector_window(name: str, request: RequestFeature, col: float, row: float) -> WindowResult:
    return WindowResult(
        partition_id="p",
        name=name,
        crs="EPSG:32632",
        resolution=10.0,
        bounds=(46000, -510000, 46032, -509968),
        time_range=T,
        feature_ids=[request.id],
        request_features=[request],
        vector=[VectorFeature(sg.Point(col, row), {"category": "water", "score": 0.7})],
    )


VLAYER = OutputLayer("output", "vector", class_names=["land", "water"])


def test_combine_geojson_geometry_source_and_request_properties(tmp_path: Path) -> None:
    from rslp.common.partitioners.projection import PixelGrid

    grid = PixelGrid("EPSG:32632", 10.0)
    lon, lat = grid.pixel_to_lonlat(46016, -509984)
    req = feat("site", sg.box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), owner="me")
    w = _vector_window("w1", req, 46016, -509984)

    def one(stage: CombineGeojson, sub: str) -> dict:
        (path,) = stage.process_window(w, VLAYER, tmp_path / sub)
        (f,) = json.loads(path.read_text())["features"]
        return f

    f = one(CombineGeojson(), "a")
    assert f["geometry"]["type"] == "Point" and f["properties"]["owner"] == "me"
    f = one(CombineGeojson(geometry_source="request"), "b")
    assert sg.shape(f["geometry"]).hausdorff_distance(req.geometry) < 1e-6
    f = one(CombineGeojson(geometry_source="result", include_request_properties=False), "c")
    assert "owner" not in f["properties"] and f["properties"]["category"] == "water"
    assert f["properties"]["request_id"] == "site"
    f = one(RequestCombineGeojson(), "d")  # the reference's CombineGeojson: request geometry
    assert f["geometry"]["type"] == "Polygon"
    with pytest.raises(ValueError, match="geometry_source"):
        CombineGeojson(geometry_source="nowhere")
    with pytest.raises(ValueError, match="contradicts"):
        CombineGeojson(window_geometry=True, geometry_source="request")


def _fc(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _f(geom: sg.base.BaseGeometry, window: str, **props: object) -> dict:
    return {
        "type": "Feature",
        "properties": {"window": window, **props},
        "geometry": sg.mapping(geom),
    }


def test_dedupe_and_concatenate_merges(tmp_path: Path) -> None:
    a = _fc(tmp_path / "a.geojson", [_f(sg.Point(8.0, 46.0), "a", score=0.1)])
    b = _fc(
        tmp_path / "b.geojson",
        [
            _f(sg.Point(8.0005, 46.0), "b", score=0.9),  # ~39 m: within 0.001 degree
            _f(sg.box(8.1, 46.0, 8.2, 46.1), "b"),
        ],
    )
    c = _fc(tmp_path / "c.geojson", [_f(sg.box(8.1, 46.0, 8.2, 46.095), "c")])  # IoU 0.95
    (out,) = CombineAndDeduplicateGeojson().process_partition(
        [a, b, c], VLAYER, tmp_path / "d", "p"
    )
    kept = json.loads(out.read_text())["features"]
    # the first by window name is kept (no score decides), polygons with IoU >= 0.9 merged
    assert [(f["properties"]["window"], f["geometry"]["type"]) for f in kept] == [
        ("a", "Point"),
        ("b", "Polygon"),
    ]
    (out,) = RequestCombineGeojson().process_partition([a, b, c], VLAYER, tmp_path / "r", "p")
    assert len(json.loads(out.read_text())["features"]) == 4  # the reference concatenates


def test_simplify_polygons(tmp_path: Path) -> None:
    wiggly = sg.Polygon([(8.0, 46.0), (8.05, 46.0001), (8.1, 46.0), (8.1, 46.1), (8.0, 46.1)])
    src = _fc(tmp_path / "a.geojson", [_f(wiggly, "a"), _f(sg.Point(8, 46), "a")])
    (out,) = SimplifyPolygons(tolerance=0.001).process_dataset([src], VLAYER, tmp_path / "o")
    poly, pt = json.loads(out.read_text())["features"]
    assert len(poly["geometry"]["coordinates"][0]) == 5  # the 0.0001-degree wiggle is gone
    assert pt["geometry"]["type"] == "Point"


RLAYER = OutputLayer(
    "output",
    "raster",
    ["output"],
    "uint8",
    255,
    ["land", "water"],
    Legend(
        classes=(LegendClass(0, "land", (1, 2, 3, 255)), LegendClass(1, "water", (4, 5, 6, 128)))
    ),
)


def _raster(tmp_path: Path, value: np.ndarray, name: str = "w") -> Path:
    from rasterio.transform import from_origin

    from rslp.common.postprocessing.geotiff import write_geotiff

    return write_geotiff(
        tmp_path / f"{name}.tif", value, "EPSG:32632", from_origin(460000, 5100000, 10, 10), 255
    )


def test_combine_geotiff_writes_the_configured_class_colours(tmp_path: Path) -> None:
    arr = np.zeros((1, 32, 32), dtype=np.uint8)
    arr[:, :16] = 1
    arr[:, :, :4] = 255
    src = _raster(tmp_path, arr)
    cog, png = CombineGeotiff().process_dataset([src], RLAYER, tmp_path / "out")
    with rasterio.open(cog) as ds:
        cmap = ds.colormap(1)
        # GeoTIFF palettes hold RGB (GDAL writes alpha 255); the tags keep the alpha
        assert cmap[0] == (1, 2, 3, 255) and cmap[1][:3] == (4, 5, 6)
        assert json.loads(ds.tags()["class_colors"]) == {"0": [1, 2, 3, 255], "1": [4, 5, 6, 128]}
        assert ds.nodata == 255
    img = np.asarray(Image.open(png))
    assert tuple(img[20, 10]) == (1, 2, 3) and tuple(img[5, 10]) == (4, 5, 6)
    assert tuple(img[5, 1]) == (255, 255, 255)  # nodata


def test_nodata_value_that_is_a_class_keeps_the_layers(tmp_path: Path) -> None:
    src = _raster(tmp_path, np.zeros((1, 8, 8), dtype=np.uint8))
    (cog,) = CombineGeotiff(nodata_value=0, quicklook=False).process_dataset(
        [src], RLAYER, tmp_path / "o"
    )
    with rasterio.open(cog) as ds:
        assert ds.nodata == 255 and (ds.read(1) == 0).all()  # class 0 stays visible
    (cog,) = CombineGeotiff(nodata_value=7, quicklook=False).process_dataset(
        [src], RLAYER, tmp_path / "o2"
    )
    with rasterio.open(cog) as ds:
        assert ds.nodata == 7


def test_value_transform_applies_once_and_keeps_nodata(tmp_path: Path) -> None:
    arr = np.full((1, 8, 8), 50, dtype=np.uint8)
    arr[0, 0, 0] = 255
    src = _raster(tmp_path, arr)
    stage = CombineGeotiff(
        quicklook=False,
        value_transform={"type": "linear", "scale": 0.5, "offset": 1, "output_dtype": "int16"},
    )
    layer = OutputLayer("output", "raster", ["output"], "uint8", 255)
    (part,) = stage.process_partition([src], layer, tmp_path / "p", "p")
    (final,) = stage.process_dataset([part], layer, tmp_path / "d")
    with rasterio.open(final) as ds:
        data = ds.read(1)
        assert ds.dtypes[0] == "int16" and ds.nodata == 255
        assert data[0, 0] == 255 and (data.ravel()[1:] == 26).all()  # 0.5 * 50 + 1, once
    with pytest.raises(ValueError, match="output_dtype"):
        CombineGeotiff(value_transform={"scale": 2, "output_dtype": "float64"})


def test_max_pixels_per_dimension_tiles_the_result(tmp_path: Path) -> None:
    src = _raster(tmp_path, np.ones((1, 40, 70), dtype=np.uint8))
    layer = OutputLayer("output", "raster", ["output"], "uint8", 255)
    paths = CombineGeotiff(max_pixels_per_dimension=32).process_dataset(
        [src], layer, tmp_path / "o"
    )
    tiles = [p for p in paths if p.suffix == ".tif"]
    assert sorted(p.name for p in tiles) == [
        f"result_{r}_{c}.tif" for r in (0, 1) for c in (0, 1, 2)
    ]
    total = 0
    for p in tiles:
        with rasterio.open(p) as ds:
            assert ds.width <= 32 and ds.height <= 32
            total += int((ds.read(1) == 1).sum())
    assert total == 40 * 70
    assert any(p.name == "result.png" for p in paths)


def test_regression_legend_draws_its_colormap(tmp_path: Path) -> None:
    arr = np.linspace(0, 100, 64, dtype=np.float32).reshape(1, 8, 8)
    src = _raster(tmp_path, arr)
    legend = Legend(value_range=(0.0, 100.0), colormap="magma")
    layer = OutputLayer("output", "raster", ["output"], "float32", float("nan"), legend=legend)
    _, png = CombineGeotiff().process_dataset([src], layer, tmp_path / "o")
    img = np.asarray(Image.open(png))
    ramp = colormap("magma")
    assert tuple(img[0, 0]) == tuple(ramp[0]) and tuple(img[7, 7]) == tuple(ramp[-1])
    assert tuple(colormap("magma_r")[0]) == tuple(ramp[-1])
    with pytest.raises(ValueError, match="unknown colormap"):
        colormap("nope")
