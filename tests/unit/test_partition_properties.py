"""Property-based tests of partitioning over random requests (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely
import shapely.geometry as sg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rslp.common.partitioners import GridPartitioner, OutputProjection, WindowSpec
from rslp.common.partitioners.interface import FeatureFrame
from rslp.common.partitioners.projection import split_antimeridian
from rslp.request import RequestFeature
from rslp.runner.partition import build_plan

T = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC))
UTM = OutputProjection(resolution=10)


@st.composite
def polygons(draw: st.DrawFn) -> sg.Polygon:
    """Random polygons of a few km near the 6E zone border and 0.05-degree grid lines."""
    cx = draw(st.floats(5.9, 6.1))
    cy = draw(st.floats(45.95, 46.05))
    n = draw(st.integers(3, 8))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi), min_size=n, max_size=n))))
    radii = np.array(draw(st.lists(st.floats(0.005, 0.03), min_size=n, max_size=n)))
    pts = np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])
    poly = shapely.make_valid(sg.Polygon(pts)).buffer(0)
    if poly.is_empty or poly.area < 1e-6:
        poly = sg.Point(cx, cy).buffer(0.01)
    return poly if poly.geom_type == "Polygon" else max(poly.geoms, key=lambda g: g.area)


def plan(
    features: list[RequestFeature], tmp: Path, cell: float = 0.05
) -> dict[str, list[WindowSpec]]:
    index = build_plan(features, GridPartitioner(cell), GridPartitioner(32), UTM, tmp)
    return {
        p["id"]: [
            WindowSpec.from_json(json.loads(line))
            for line in (tmp / "windows" / f"{p['id']}.jsonl").read_text().splitlines()
        ]
        for p in index["partitions"]
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(poly=polygons(), seed=st.integers(0, 2**16))
def test_every_point_is_covered_by_exactly_one_window(
    poly: sg.Polygon, seed: int, tmp_path_factory
) -> None:
    tmp = tmp_path_factory.mktemp("plan")
    feature = RequestFeature("f", poly, T, {})
    windows = [w for ws in plan([feature], tmp).values() for w in ws]
    assert len({w.name for w in windows}) == len(windows)
    px = FeatureFrame(feature, UTM).pixels()
    boxes = shapely.box(*np.array([w.bounds for w in windows], dtype=float).T)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = px.bounds
    pts = shapely.points(rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400))
    inside = pts[shapely.contains(px, pts)]
    for p in inside:
        assert shapely.contains(boxes, p).sum() == 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(polys=st.lists(polygons(), min_size=2, max_size=4))
def test_no_shared_pixels_in_a_group_and_identical_reruns(polys: list, tmp_path_factory) -> None:
    features = [RequestFeature(f"f{i}", p, T, {}) for i, p in enumerate(polys)]
    a = plan(features, tmp_path_factory.mktemp("a"))
    b = plan(features, tmp_path_factory.mktemp("b"))
    assert {k: [w.to_json() for w in v] for k, v in a.items()} == {
        k: [w.to_json() for w in v] for k, v in b.items()
    }
    names = [w.name for ws in a.values() for w in ws]
    assert len(names) == len(set(names))  # no window in two partitions
    for ws in a.values():
        by_crs: dict[str, list] = {}
        for w in ws:
            by_crs.setdefault(w.crs, []).append(shapely.box(*w.bounds))
        for boxes in by_crs.values():
            union_area = shapely.union_all(boxes).area
            assert abs(union_area - sum(bx.area for bx in boxes)) < 1e-6


def test_antimeridian_polygon_is_covered_and_owned_once(tmp_path: Path) -> None:
    ring = [(179.8, 10.0), (-179.8, 10.0), (-179.8, 10.2), (179.8, 10.2)]
    feature = RequestFeature("am", sg.Polygon(ring), T, {})
    assert split_antimeridian(feature.geometry).geom_type == "MultiPolygon"
    p = plan([feature], tmp_path)
    ids = sorted(p)
    ixs = [int(i.split("_")[1]) for i in ids]
    assert max(ixs) == 3599 and min(ixs) == -3600  # cells on both sides of 180
    windows = [w for ws in p.values() for w in ws]
    assert {w.crs for w in windows} == {"EPSG:32601"}
    assert len({w.name for w in windows}) == len(windows)
    px = FeatureFrame(feature, UTM).pixels()
    cover = shapely.union_all([shapely.box(*w.bounds) for w in windows])
    assert cover.contains(px)


def test_polar_request_uses_ups(tmp_path: Path) -> None:
    feature = RequestFeature("np", sg.box(10.0, 85.0, 10.2, 85.05), T, {})
    windows = [w for ws in plan([feature], tmp_path).values() for w in ws]
    assert windows and {w.crs for w in windows} == {"EPSG:32661"}


def test_overlapping_features_share_windows_and_record_both(tmp_path: Path) -> None:
    a = RequestFeature("a", sg.box(6.00, 46.00, 6.02, 46.02), T, {})
    b = RequestFeature("b", sg.box(6.01, 46.01, 6.03, 46.03), T, {})
    windows = [w for ws in plan([a, b], tmp_path).values() for w in ws]
    assert len({w.name for w in windows}) == len(windows)
    assert any(sorted(w.feature_ids) == ["a", "b"] for w in windows)
