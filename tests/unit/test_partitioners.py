from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest
import shapely.geometry as sg

from rslp.common.partitioners import (
    FixedWindowPartitioner,
    GridPartitioner,
    NoopPartitioner,
    OutputProjection,
)
from rslp.common.partitioners.interface import FeatureFrame
from rslp.common.partitioners.projection import PixelGrid, utm_crs_for
from rslp.request import RequestFeature

T = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC))
UTM = OutputProjection(resolution=10)
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def feat(fid: str, geom: sg.base.BaseGeometry, time_range=T) -> RequestFeature:
    return RequestFeature(fid, geom, time_range, {})


def test_utm_zone_selection() -> None:
    assert utm_crs_for(8.7, 46.0) == "EPSG:32632"
    assert utm_crs_for(-76.3, -5.0) == "EPSG:32718"
    assert utm_crs_for(0.0, 89.0) == "EPSG:32661"
    assert utm_crs_for(0.0, -85.0) == "EPSG:32761"


def test_noop_large_is_one_partition_with_every_feature() -> None:
    fs = [feat("a", sg.Point(8.7, 46.0)), feat("b", sg.Point(8.8, 46.1))]
    parts = NoopPartitioner().partition_request(fs)
    assert len(parts) == 1
    assert [f.id for f in parts[0].features] == ["a", "b"]
    assert SAFE.match(parts[0].id)
    assert NoopPartitioner().partition_request(fs)[0].id == parts[0].id


def test_noop_small_window_covers_geometry_bounds() -> None:
    poly = sg.box(8.70, 46.00, 8.72, 46.01)
    part = NoopPartitioner().partition_request([feat("a", poly)])[0]
    (w,) = list(NoopPartitioner().partition_windows(part, UTM))
    px = PixelGrid(w.crs, 10).to_pixels(poly)
    x0, y0, x1, y1 = px.bounds
    assert w.bounds[0] <= x0 and w.bounds[1] <= y0 and w.bounds[2] >= x1 and w.bounds[3] >= y1
    assert w.bounds[2] - x1 < 1 and x0 - w.bounds[0] < 1  # floor/ceil, not padding


def test_fixed_window_is_centred_and_sized() -> None:
    pt = sg.Point(8.7, 46.0)
    part = FixedWindowPartitioner().partition_request([feat("site", pt)])[0]
    assert part.id == "site"
    (w,) = list(FixedWindowPartitioner(window_size=64).partition_windows(part, UTM))
    assert w.bounds[2] - w.bounds[0] == 64 and w.bounds[3] - w.bounds[1] == 64
    c = PixelGrid(w.crs, 10).to_pixels(pt)
    assert abs((w.bounds[0] + w.bounds[2]) / 2 - c.x) <= 1
    assert abs((w.bounds[1] + w.bounds[3]) / 2 - c.y) <= 1
    assert w.crs == "EPSG:32632"
    assert w.time_range == T and w.feature_ids == ["site"]


def test_grid_small_windows_follow_the_geometry_not_its_bbox() -> None:
    # An L-shaped polygon: its bounding box has cells the polygon does not touch.
    l_shape = sg.Polygon(
        [(8.70, 46.00), (8.76, 46.00), (8.76, 46.01), (8.71, 46.01), (8.71, 46.04), (8.70, 46.04)]
    )
    part = NoopPartitioner().partition_request([feat("l", l_shape)])[0]
    windows = list(GridPartitioner(grid_size=32).partition_windows(part, UTM))
    px = FeatureFrame(feat("l", l_shape), UTM).pixels()
    minx, miny, maxx, maxy = px.bounds
    bbox_cells = (math.ceil(maxx / 32) - math.floor(minx / 32)) * (
        math.ceil(maxy / 32) - math.floor(miny / 32)
    )
    assert 0 < len(windows) < bbox_cells
    for w in windows:
        assert w.bounds[0] % 32 == 0 and w.bounds[1] % 32 == 0
        assert w.bounds[2] - w.bounds[0] == 32
        assert px.intersects(sg.box(*w.bounds))
    # Every pixel of the geometry is covered by some window.
    cover = sg.MultiPolygon([sg.box(*w.bounds) for w in windows]).buffer(0)
    assert cover.contains(px.buffer(-0.5))
    assert len({w.name for w in windows}) == len(windows)


def test_grid_large_partitions_own_each_window_once() -> None:
    # A request spanning 4 cells of a 0.05 degree grid: windows near the borders must be
    # made exactly once across partitions.
    poly = sg.box(8.68, 45.98, 8.72, 46.02)
    large = GridPartitioner(grid_size=0.05)
    parts = large.partition_request([feat("a", poly)])
    assert len(parts) == 4
    assert all(SAFE.match(p.id) for p in parts)
    small = GridPartitioner(grid_size=64)
    names: list[str] = []
    for p in parts:
        names += [w.name for w in list(small.partition_windows(p, UTM))]
    single = list(
        small.partition_windows(NoopPartitioner().partition_request([feat("a", poly)])[0], UTM)
    )
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(w.name for w in single)


def test_limit_is_deterministic() -> None:
    poly = sg.box(8.70, 46.00, 8.75, 46.03)
    part = NoopPartitioner().partition_request([feat("a", poly)])[0]
    all_w = list(GridPartitioner(grid_size=64).partition_windows(part, UTM))
    one = list(GridPartitioner(grid_size=64, limit=1).partition_windows(part, UTM))
    assert len(one) == 1 and one[0].name == min(w.name for w in all_w)


def test_window_names_are_content_derived() -> None:
    pt = sg.Point(8.7, 46.0)
    later = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    p1 = FixedWindowPartitioner().partition_request([feat("x", pt)])[0]
    p2 = FixedWindowPartitioner().partition_request([feat("x", pt, later)])[0]
    w1 = list(FixedWindowPartitioner().partition_windows(p1, UTM))[0]
    w1b = list(FixedWindowPartitioner().partition_windows(p1, UTM))[0]
    w2 = list(FixedWindowPartitioner().partition_windows(p2, UTM))[0]
    assert w1.name == w1b.name
    assert w1.bounds == w2.bounds and w1.name != w2.name
    assert SAFE.match(w1.name)


def test_explicit_projection() -> None:
    part = FixedWindowPartitioner().partition_request([feat("x", sg.Point(8.7, 46.0))])[0]
    (w,) = list(
        FixedWindowPartitioner(32).partition_windows(
            part, OutputProjection(crs="EPSG:3857", resolution=20)
        )
    )
    assert w.crs == "EPSG:3857" and w.resolution == 20


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        FixedWindowPartitioner(window_size=0)
    with pytest.raises(ValueError):
        GridPartitioner(grid_size=-1)
