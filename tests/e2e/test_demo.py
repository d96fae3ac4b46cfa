"""The demo project end to end: real rslearn, torch, GeoTIFFs; checked against the truth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import shapely.geometry as sg
from pyproj import Transformer
from rasterio.features import rasterize

from rslp.espredict_runner import EsPredictRunner
from tests.conftest import DEMO, REPO, run_pipeline

pytestmark = pytest.mark.e2e


def agreement(result: Path, project: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """Share of request pixels whose predicted class equals the synthetic truth."""
    with rasterio.open(result) as src:
        arr, transform, crs = src.read(1), src.transform, src.crs
    t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def proj(g: sg.base.BaseGeometry) -> sg.base.BaseGeometry:
        return shapely.transform(g, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))

    def shapes(path: Path) -> list:
        return [proj(sg.shape(f["geometry"])) for f in json.loads(path.read_text())["features"]]

    lakes = shapes(project / "truth" / "lakes.geojson")
    request = shapes(project / "prediction" / "test-request1.geojson")
    truth = rasterize(
        [(g, 1) for g in lakes], out_shape=arr.shape, transform=transform, dtype="uint8"
    )
    inside = rasterize(
        [(g, 1) for g in request], out_shape=arr.shape, transform=transform, dtype="uint8"
    )
    mask = inside.astype(bool)
    return float((arr[mask] == truth[mask]).mean()), arr, mask


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[EsPredictRunner, list[Path]]:
    scratch = tmp_path_factory.mktemp("scratch")
    runner = EsPredictRunner.from_project(DEMO, scratch)
    return runner, run_pipeline(runner)


def test_result_is_a_georeferenced_cog_covering_the_request(demo_run) -> None:
    runner, results = demo_run
    assert [p.name for p in results] == ["result.tif", "result.png"]
    with rasterio.open(results[0]) as src:
        assert src.crs.to_epsg() == 32632
        assert src.nodata == 255
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1)
        bounds = sg.box(*src.bounds)
        to_utm = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
    request = json.loads((DEMO / "prediction" / "test-request1.geojson").read_text())
    for f in request["features"]:
        g = shapely.transform(
            sg.shape(f["geometry"]), lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1]))
        )
        assert bounds.contains(g)


def test_prediction_agrees_with_the_synthetic_truth(demo_run) -> None:
    _, results = demo_run
    share, arr, mask = agreement(results[0], DEMO)
    assert share >= 0.90, f"only {share:.1%} of request pixels agree with the truth"
    assert (arr[mask] != 255).all(), "request pixels must all be predicted"
    water = (arr[mask] == 1).mean()
    assert 0.05 < water < 0.5  # both classes present, as in the truth


def test_manifest_and_scratch_are_clean(demo_run) -> None:
    runner, _ = demo_run
    manifest = json.loads(runner.scratch.manifest_path.read_text())
    assert set(manifest["inputs"]) >= {
        "model.yaml",
        "dataset.json",
        "request.geojson",
        "checkpoint.ckpt",
    }
    for pid in manifest["partition_ids"]:
        for step in ("dataset", "inference", "postprocess"):
            assert manifest["partitions"][pid][step]["state"] == "done"
    assert not [
        p for p in runner.scratch.root.rglob("*") if p.name.endswith(".tmp") or ".staging" in p.name
    ]
    assert not list((runner.scratch.root / "tmp").iterdir())
    # The project directory stays untouched (LocalFiles caches land in scratch).
    assert not (DEMO / "imagery" / "summary.json").exists()


def test_rerun_skips_done_work_and_gives_identical_result(demo_run) -> None:
    runner, results = demo_run
    before = results[0].read_bytes()
    pid = runner.partition()[0]
    runner.build_dataset(pid)
    runner.run_inference(pid)
    runner.postprocess(pid)
    again = runner.combine(runner.partition())
    assert again[0].read_bytes() == before


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_each_step_runs_alone_in_a_fresh_process(tmp_path: Path) -> None:
    make = (
        "from rslp.espredict_runner import EsPredictRunner\n"
        f"r = EsPredictRunner.from_project({str(DEMO)!r}, {str(tmp_path / 'scratch')!r})\n"
    )
    out = _python(make + "print(','.join(r.partition()))", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    pid = out.stdout.strip().splitlines()[-1].split(",")[0]
    for call in (
        f"r.build_dataset({pid!r})",
        f"r.run_inference({pid!r})",
        f"r.postprocess({pid!r})",
    ):
        out = _python(make + call, tmp_path)
        assert out.returncode == 0, f"{call}: {out.stderr[-2000:]}"
    out = _python(make + f"print(r.combine([{pid!r}]))", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    with rasterio.open(tmp_path / "scratch" / "results" / "result.tif") as src:
        assert src.crs.to_epsg() == 32632 and (src.read(1) != 255).any()


def _run_script(project: Path, name: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, name], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"{name}: {out.stderr[-3000:]}"


def test_seed_scripts_run_as_written(demo_copy: Path) -> None:
    _run_script(demo_copy, "run_dataset_building.py")
    _run_script(demo_copy, "run_inference_single_partition.py")
    _run_script(demo_copy, "run_pipeline.py")
    share, _, _ = agreement(demo_copy / "scratch" / "results" / "result.tif", demo_copy)
    assert share >= 0.90


def test_seed_single_window_debug_run(demo_copy: Path) -> None:
    shutil.copy(
        demo_copy / "partition_strategies.single_window.yaml",
        demo_copy / "partition_strategies.yaml",
    )
    _run_script(demo_copy, "run_dataset_building.py")
    _run_script(demo_copy, "run_inference_single_window.py")
    windows = list((demo_copy / "scratch" / "dataset" / "windows").glob("*/*"))
    assert len(windows) == 1
    assert any((windows[0] / "layers").glob("output*"))
