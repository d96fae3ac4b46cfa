"""The vector demo end to end: per-window classes as RFC 7946 GeoJSON and GeoParquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import shapely
import shapely.geometry as sg

from rslp.espredict_runner import EsPredictRunner
from tests.conftest import REPO, run_pipeline

pytestmark = pytest.mark.e2e
PROJECT = REPO / "data" / "demo-vector"


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[EsPredictRunner, list[Path]]:
    runner = EsPredictRunner.from_project(PROJECT, tmp_path_factory.mktemp("scratch"))
    return runner, run_pipeline(runner)


def test_result_is_rfc7946_and_matches_the_truth(vector_run) -> None:
    runner, results = vector_run
    assert [p.name for p in results] == ["result.geojson", "result.parquet"]
    doc = json.loads(results[0].read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    feats = doc["features"]
    planned = sum(
        p["num_windows"]
        for p in json.loads((runner.scratch.plan_dir / "index.json").read_text())["partitions"]
    )
    assert len(feats) == planned  # one classification per window, none twice
    assert len({f["properties"]["window"] for f in feats}) == len(feats)
    lakes = shapely.union_all(
        [
            sg.shape(f["geometry"])
            for f in json.loads((PROJECT / "truth" / "lakes.geojson").read_text())["features"]
        ]
    )
    agree = 0
    for f in feats:
        g = sg.shape(f["geometry"])
        lon, lat = g.centroid.x, g.centroid.y
        assert 8 < lon < 9 and 45 < lat < 46
        assert g.exterior.is_ccw
        truth = "water" if g.intersection(lakes).area / g.area > 0.5 else "land"
        agree += f["properties"]["category"] == truth
        assert f["properties"]["request_id"] in ("uno", "due-tre")
        assert f["properties"]["site"] == f["properties"]["request_id"]
    assert agree / len(feats) >= 0.9
    assert any(f["properties"]["category"] == "water" for f in feats)


def test_geoparquet_and_reruns_are_identical(vector_run) -> None:
    runner, results = vector_run
    table = pq.read_table(results[1])
    assert json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]["encoding"] == "WKB"
    assert table.num_rows == len(json.loads(results[0].read_text())["features"])
    before = [p.read_bytes() for p in results]
    pids = runner.partition()
    runner.postprocess(pids[0])
    again = runner.combine(pids)
    assert [p.read_bytes() for p in again] == before


def test_a_feature_without_imagery_has_no_vector_result_and_is_listed(tmp_path: Path) -> None:
    """Through the Python API: rejected windows give no features; combine keeps the floor."""
    import shutil

    import yaml

    from rslp.runner.outcomes import WindowFloorError

    project = tmp_path / "vector"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    request = project / "prediction" / "lakes-request.geojson"
    data = json.loads(request.read_text())
    gone = data["features"][0]
    gone["geometry"]["coordinates"] = [
        [[x + 0.5, y] for x, y in ring] for ring in gone["geometry"]["coordinates"]
    ]
    request.write_text(json.dumps(data))
    runner = EsPredictRunner.from_project(project, tmp_path / "scratch")
    with pytest.raises(WindowFloorError, match="below min_window_success_rate 0.9"):
        run_pipeline(runner)  # every step ran; combine refuses below the project's floor
    assert not (runner.scratch.results / "result.geojson").exists()

    cfg = project / "partition_strategies.yaml"
    doc = yaml.safe_load(cfg.read_text())
    doc["dataset_build"] = {"min_window_success_rate": 0.2}
    cfg.write_text(yaml.safe_dump(doc))
    runner = EsPredictRunner.from_project(project, tmp_path / "scratch")
    results = runner.combine(runner.partition())
    feats = json.loads(results[0].read_text())["features"]
    assert feats and all(f["properties"]["request_id"] != gone["id"] for f in feats)
    listed = json.loads((runner.scratch.results / "rejected_windows.geojson").read_text())
    assert listed["features"]
    assert {i for f in listed["features"] for i in f["properties"]["feature_ids"]} == {gone["id"]}
