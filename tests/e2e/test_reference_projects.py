"""Projects written for the reference runner run as written, end to end.

- the raster demo in the reference format (olmoearth_run.yaml, the reference's model.yaml
  conventions, its own class colours) gives the seed-format demo's result, with those
  colours in the COG;
- a per-feature classification project in the reference format (Chunk / FixedWindow with
  a factory-dict projection, the reference's CombineGeojson) gives one feature per request
  feature, on the request's geometry;
- a seed-format project using the reference's init_args (CombineGeojson geometry_source,
  GridPartitioner output_projection/use_utm/overlap_size) runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
import yaml

from rslp.convert import convert
from rslp.espredict_runner import EsPredictRunner
from tests.conftest import DEMO, REPO, reference_model_yaml, reference_project, run_pipeline
from tests.e2e.test_cli_run import esrunner
from tests.unit.test_reference_format import FIXTURES

pytestmark = pytest.mark.e2e
VECTOR = REPO / "data" / "demo-vector"
COLOURS = {0: (124, 67, 18), 1: (0, 90, 200)}


@pytest.fixture(scope="module")
def seed_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("seed")
    out = esrunner("run", str(DEMO), "--scratch", str(scratch))
    assert out.returncode == 0, out.stderr[-3000:]
    return scratch / "results" / "result.tif"


def test_raster_demo_in_reference_format_gives_the_same_result(
    seed_result: Path, tmp_path: Path
) -> None:
    project = tmp_path / "demo-ref"
    convert(DEMO, "reference", project)
    run = yaml.safe_load((project / "olmoearth_run.yaml").read_text())
    for value in run["inference_results_config"]["classification_fields"][0]["allowed_values"]:
        value["color"] = list(COLOURS[value["value"]])
    (project / "olmoearth_run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    model = reference_model_yaml((DEMO / "model.yaml").read_text())
    (project / "model.yaml").write_text(model)
    scratch = tmp_path / "scratch"
    out = esrunner("run", str(project), "--scratch", str(scratch))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RslearnWriter path 'placeholder' is replaced by the run's scratch" in out.stderr
    result = scratch / "results" / "result.tif"
    with rasterio.open(seed_result) as a, rasterio.open(result) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        assert np.array_equal(a.read(), b.read())
        assert b.nodata == 255
        assert {v: b.colormap(1)[v][:3] for v in COLOURS} == COLOURS
        assert b.tags()["class_1"] == "water"
    assert (scratch / "inputs" / "sections" / "postprocessing_strategies.yaml").is_file()
    # a changed postprocessing section re-runs postprocessing only
    run["postprocessing_strategies"]["process_dataset"]["init_args"] = {"quicklook": False}
    (project / "olmoearth_run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    out = esrunner("run", str(project), "--scratch", str(scratch))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "skipped inference (done and current)" in out.stderr
    assert not (scratch / "results" / "result.png").exists()


def test_reference_vector_project_classifies_each_request_feature(tmp_path: Path) -> None:
    src, run = FIXTURES["fixed-factory-projection"]
    project = reference_project(src, tmp_path / "fld", run)
    runner = EsPredictRunner.from_project(project, tmp_path / "scratch")
    (result,) = run_pipeline(runner)
    feats = json.loads(result.read_text())["features"]
    request = json.loads((project / "prediction_request_geometry.geojson").read_text())
    assert len(feats) == len(request["features"])
    for f, r in zip(
        sorted(feats, key=lambda f: f["properties"]["request_id"]),
        sorted(request["features"], key=lambda r: r["id"]),
        strict=True,
    ):
        assert f["properties"]["request_id"] == r["id"]
        assert f["properties"]["category"] in ("land", "water")
        assert f["properties"]["oe_start_time"] == r["properties"]["oe_start_time"]
        assert sg.shape(f["geometry"]).hausdorff_distance(sg.shape(r["geometry"])) < 1e-6


def test_seed_project_with_reference_init_args_runs(tmp_path: Path) -> None:
    project = tmp_path / "vec"
    shutil.copytree(VECTOR, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    part = yaml.safe_load((project / "partition_strategies.yaml").read_text())
    part["strategy_small"]["init_args"].update(
        {
            "use_utm": True,
            "overlap_size": 4,
            "output_projection": FIXTURES["grid-projection-utm"][1]["partition_strategies"][
                "prepare_window_geometries"
            ]["init_args"]["output_projection"],
        }
    )
    (project / "partition_strategies.yaml").write_text(yaml.safe_dump(part))
    post = yaml.safe_load((project / "postprocessing_strategies.yaml").read_text())
    post["strategy_small"]["init_args"] = {"geometry_source": "request"}
    (project / "postprocessing_strategies.yaml").write_text(yaml.safe_dump(post))
    scratch = tmp_path / "scratch"
    out = esrunner("run", str(project), "--scratch", str(scratch))
    assert out.returncode == 0, out.stderr[-3000:]
    feats = json.loads((scratch / "results" / "result.geojson").read_text())["features"]
    assert feats
    requests = {
        r["id"]: sg.shape(r["geometry"])
        for p in sorted((project / "prediction").glob("*.geojson"))[:1]
        for r in json.loads(p.read_text())["features"]
    }
    for f in feats:
        g = sg.shape(f["geometry"])
        assert g.hausdorff_distance(requests[f["properties"]["request_id"]]) < 1e-6
    windows = [
        json.loads(line)
        for p in (scratch / "plan" / "windows").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert {(w["bounds"][2] - w["bounds"][0]) for w in windows} == {40}  # 32 + 2 x 4 overlap
