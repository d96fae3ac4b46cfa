"""Imperfect data: windows without imagery are rejected, listed, and filled by a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform as warp_transform

from bench.gaps import add_east_scene
from tests.e2e.test_cli_run import esrunner, manifest

pytestmark = pytest.mark.e2e

GOOD = ("delta", "gamma", "north-lakes")
# East of the scene's edge (8.745 E): its eastern windows have no imagery at all.
EDGE = [[8.715, 45.975], [8.775, 45.975], [8.775, 45.985], [8.715, 45.985], [8.715, 45.975]]


def _with_edge_feature(project: Path) -> None:
    request = project / "prediction" / "test-request1.geojson"
    data = json.loads(request.read_text())
    data["features"].append(
        {
            "type": "Feature",
            "id": "east-edge",
            "properties": {
                "es_start_time": "2024-06-01T00:00:00+00:00",
                "es_end_time": "2024-06-30T23:59:59+00:00",
            },
            "geometry": {"type": "Polygon", "coordinates": [EDGE]},
        }
    )
    request.write_text(json.dumps(data))


def _values_at(tif: Path, lonlat: list[tuple[float, float]]) -> list[int | None]:
    """The first band's values at lon/lat points (None: outside the raster)."""
    with rasterio.open(tif) as src:
        xs, ys = warp_transform("EPSG:4326", src.crs, *zip(*lonlat, strict=True))
        b = src.bounds
        out: list[int | None] = []
        for x, y in zip(xs, ys, strict=True):
            inside = b.left < x < b.right and b.bottom < y < b.top
            out.append(int(next(src.sample([(x, y)]))[0]) if inside else None)
        return out


def _completed_marks(scratch: Path, partition: str) -> dict[str, int]:
    root = scratch / "dataset" / "windows" / partition
    return {p.parents[2].name: p.stat().st_mtime_ns for p in root.glob("*/layers/output/completed")}


def test_gaps_are_rejected_listed_refused_below_the_floor_and_filled_by_a_rerun(
    demo_copy: Path, tmp_path: Path
) -> None:
    _with_edge_feature(demo_copy)
    scratch = tmp_path / "scratch"
    run = ("run", str(demo_copy), "--scratch", str(scratch), "--workers", "2")

    # 1. The run finishes with what exists (default floor 0.9) and says what is missing.
    out = esrunner(*run)
    assert out.returncode == 0, out.stderr[-3000:]
    m = manifest(scratch)
    counts = {p: m["partitions"][p]["dataset"]["result"] for p in (*GOOD, "east-edge")}
    assert all(counts[p]["rejected"] == 0 for p in GOOD), counts
    edge = counts["east-edge"]
    assert 0 < edge["rejected"] < edge["windows"], edge
    planned = sum(c["windows"] for c in counts.values())
    summary = [ln for ln in out.stderr.splitlines() if ln.startswith("windows: ")]
    assert summary == [
        f"windows: {planned - edge['rejected']} ready, {edge['rejected']} rejected of {planned} "
        f"planned ({(planned - edge['rejected']) / planned:.1%}; min_window_success_rate 0.9); "
        f"rejected windows: {scratch / 'results' / 'rejected_windows.geojson'}"
    ], out.stderr[-2000:]
    listing = json.loads((scratch / "results" / "rejected_windows.geojson").read_text())
    feats = listing["features"]
    assert len(feats) == edge["rejected"]
    for f in feats:
        p = f["properties"]
        assert p["partition"] == "east-edge" and p["feature_ids"] == ["east-edge"]
        assert (p["layer"], p["reason"]) == ("image", "no_items")
        west, _, _, _ = shapely.geometry.shape(f["geometry"]).bounds
        assert west > 8.73  # at or past the scene's edge, in lon/lat
    # The map has nodata (255) where windows were rejected, classes where they were not.
    result = scratch / "results" / "result.tif"
    parts = [shapely.geometry.shape(f["geometry"]) & shapely.Polygon(EDGE) for f in feats]
    inside = [(c.x, c.y) for c in (p.representative_point() for p in parts if not p.is_empty)]
    assert inside and set(_values_at(result, inside)) <= {255, None}
    assert set(_values_at(result, [(8.72, 45.98)])) <= {0, 1}
    status = esrunner("status", "--scratch", str(scratch))
    assert status.returncode == 0
    row = next(ln.split() for ln in status.stdout.splitlines() if ln.startswith("east-edge"))
    assert row[1:4] == [str(edge["windows"]), str(edge["windows"] - edge["rejected"]),
                        str(edge["rejected"])]  # fmt: skip
    total = next(ln.split() for ln in status.stdout.splitlines() if ln.startswith("total"))
    assert total == ["total", str(planned), str(planned - edge["rejected"]), str(edge["rejected"])]

    # 2. A floor above the achieved rate refuses: nothing that looks finished is left.
    out = esrunner(*run, "--min-window-success-rate", "0.99")
    assert out.returncode == 1, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, errors
    assert "is below min_window_success_rate 0.99 (--min-window-success-rate)" in errors[0]
    assert "layer 'image': no item covers the window at its time" in errors[0]
    assert str(scratch / "results" / "rejected_windows.geojson") in errors[0]
    assert sorted(p.name for p in (scratch / "results").iterdir()) == ["rejected_windows.geojson"]
    assert manifest(scratch)["combine_step"]["state"] == "refused"

    # 3. New imagery arrives: the same command fills the gap, and redoes nothing else.
    before = manifest(scratch)["partitions"]
    marks = _completed_marks(scratch, "east-edge")
    add_east_scene(demo_copy)
    out = esrunner(*run)
    assert out.returncode == 0, out.stderr[-3000:]
    after = manifest(scratch)["partitions"]
    for p in GOOD:
        assert after[p] == before[p], p
    assert after["east-edge"]["dataset"]["result"]["rejected"] == 0
    now = _completed_marks(scratch, "east-edge")
    assert len(now) == edge["windows"]
    assert all(now[name] == mark for name, mark in marks.items())  # ready ones not re-predicted
    assert not (scratch / "results" / "rejected_windows.geojson").exists()
    values = _values_at(scratch / "results" / "result.tif", inside)
    assert set(values) <= {0, 1}, values
    assert "windows: " in out.stderr and "0 rejected" in out.stderr


def test_a_partition_without_any_imagery_does_not_stop_the_others(
    demo_copy: Path, tmp_path: Path
) -> None:
    request = demo_copy / "prediction" / "test-request1.geojson"
    data = json.loads(request.read_text())
    moved = data["features"][0]
    moved["geometry"]["coordinates"] = [
        [[x + 0.5, y] for x, y in ring] for ring in moved["geometry"]["coordinates"]
    ]
    request.write_text(json.dumps(data))
    scratch = tmp_path / "scratch"
    out = esrunner(
        "run", str(demo_copy), "--scratch", str(scratch), "--workers", "1",
        "--min-window-success-rate", "0.3",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    m = manifest(scratch)
    gone = moved.get("id") or moved["properties"].get("id")
    res = m["partitions"][gone]["dataset"]["result"]
    assert res["ready"] == 0 and res["rejected"] == res["windows"] > 0
    for step in ("inference", "postprocess"):
        assert m["partitions"][gone][step]["state"] == "done"
    assert (scratch / "results" / "result.tif").is_file()
    listing = json.loads((scratch / "results" / "rejected_windows.geojson").read_text())
    assert {f["properties"]["partition"] for f in listing["features"]} == {gone}
    with rasterio.open(scratch / "results" / "result.tif") as src:
        arr = src.read(1)
    assert np.isin(arr, [0, 1, 255]).all() and (arr != 255).any()
