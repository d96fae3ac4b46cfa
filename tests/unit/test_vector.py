from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import shapely
import shapely.geometry as sg

from rslp.common.postprocessing import CombineGeojson, OutputLayer, VectorFeature, WindowResult
from rslp.common.postprocessing.geojson import DedupeRule, write_geoparquet
from rslp.request import RequestFeature

LAYER = OutputLayer("output", "vector", class_names=["ship"])
T = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))


def point(lon: float, lat: float, window: str, **props: object) -> dict:
    return {
        "type": "Feature",
        "properties": {"window": window, **props},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def test_dedupe_keeps_highest_score_across_windows_only() -> None:
    feats = [
        point(8.0, 46.0, "a", score=0.5),
        point(8.00005, 46.0, "b", score=0.9),  # ~4 m away, other window: duplicate
        point(7.99993, 46.0, "a", score=0.1),  # 5.4 m from the first, same window: kept
        point(8.01, 46.0, "b", score=0.2),  # far: kept
    ]
    kept = DedupeRule(distance_m=5).apply(feats)
    assert [f["properties"]["score"] for f in kept] == [0.9, 0.1, 0.2]


def test_dedupe_polygons_by_iou_and_property() -> None:
    def poly(x: float, window: str, cls: str) -> dict:
        g = sg.box(x, 46.0, x + 0.001, 46.001)
        return {
            "type": "Feature",
            "properties": {"window": window, "cls": cls},
            "geometry": sg.mapping(g),
        }

    feats = [poly(8.0, "a", "x"), poly(8.0001, "b", "x"), poly(8.0001, "c", "y")]
    kept = DedupeRule(iou=0.5, same_property="cls", score_property=None).apply(feats)
    assert [f["properties"]["window"] for f in kept] == ["a", "c"]


def test_window_stage_converts_to_lonlat_and_attaches_request(tmp_path: Path) -> None:
    req = RequestFeature(
        "site-1", sg.box(8.6, 45.9, 8.8, 46.1), T, {"owner": "me", "category": "req"}
    )
    # A point at the window's centre, in pixel coordinates of UTM 32N at 10 m.
    result = WindowResult(
        partition_id="p",
        name="w1",
        crs="EPSG:32632",
        resolution=10.0,
        bounds=(47000, -510000, 47032, -509968),
        time_range=T,
        feature_ids=["site-1"],
        request_features=[req],
        vector=[VectorFeature(sg.Point(47016, -509984), {"category": "ship", "score": 0.7})],
    )
    (path,) = CombineGeojson().process_window(result, LAYER, tmp_path)
    (feat,) = json.loads(path.read_text())["features"]
    lon, lat = feat["geometry"]["coordinates"]
    assert 8.6 < lon < 8.7 and 46.0 < lat < 46.1
    p = feat["properties"]
    assert p["category"] == "ship"  # model property wins over the request's
    assert p["owner"] == "me" and p["request_id"] == "site-1" and p["window"] == "w1"
    (poly_path,) = CombineGeojson(window_geometry=True).process_window(
        result, LAYER, tmp_path / "w"
    )
    ring = json.loads(poly_path.read_text())["features"][0]["geometry"]["coordinates"][0]
    assert shapely.Polygon(ring).exterior.is_ccw  # RFC 7946 winding


def test_partition_and_dataset_stages_merge_and_write_geoparquet(tmp_path: Path) -> None:
    stage = CombineGeojson(geoparquet=True)
    a = tmp_path / "a.geojson"
    b = tmp_path / "b.geojson"
    a.write_text(
        json.dumps({"type": "FeatureCollection", "features": [point(8.0, 46.0, "a", score=0.4)]})
    )
    b.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [point(8.00002, 46.0, "b", score=0.6)]}
        )
    )
    (part,) = stage.process_partition([b, a], LAYER, tmp_path / "p", "p")
    assert len(json.loads(part.read_text())["features"]) == 1
    outs = stage.process_dataset([part], LAYER, tmp_path / "r")
    assert [p.name for p in outs] == ["result.geojson", "result.parquet"]
    again = stage.process_dataset([part], LAYER, tmp_path / "r2")
    assert again[0].read_bytes() == outs[0].read_bytes()
    table = pq.read_table(outs[1])
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    assert shapely.from_wkb(table.column("geometry")[0].as_py()).x == 8.00002
    assert table.column("score")[0].as_py() == 0.6


def test_geoparquet_with_mixed_property_types(tmp_path: Path) -> None:
    feats = [point(1, 2, "a", v=1), point(3, 4, "b", v="x"), point(5, 6, "c", probs=[0.1, 0.9])]
    out = write_geoparquet(tmp_path / "x.parquet", feats)
    table = pq.read_table(out)
    assert table.num_rows == 3 and set(table.column_names) >= {"v", "probs", "geometry"}
