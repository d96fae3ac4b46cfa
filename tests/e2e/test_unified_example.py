"""The unified-format example end to end on a CPU: three heads, each written and right.

``data/olmoearth-change``: one ``olmoearth_config.yaml`` (two lookbehind windows with
recovery periods, OlmoEarth Nano from a local bundle, three segmentation heads), local
imagery through ``data_sources.yaml``, a checkpoint trained by the example's script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from esbuild.validate import validate_project
from rslp.espredict_runner import EsPredictRunner
from tests.conftest import REPO, run_pipeline

pytestmark = pytest.mark.e2e
PROJECT = REPO / "data" / "olmoearth-change"
FIELDS = ("before", "after", "change")
ESRUNNER = [sys.executable, "-m", "rslp.cli"]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def esrunner(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``esrunner ARGS`` in a fresh process (output captured)."""
    return subprocess.run(
        [*ESRUNNER, *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    scratch = tmp_path_factory.mktemp("change")
    return esrunner("run", str(PROJECT), "--scratch", str(scratch), timeout=900), scratch


def test_it_validates_without_findings() -> None:
    found = validate_project(PROJECT, deep=True)
    assert [d.text() for d in found if d.severity in ("error", "warning")] == []


def test_every_head_agrees_with_its_truth(run) -> None:
    out, scratch = run
    assert out.returncode == 0, out.stderr[-3000:]
    assert "windows: 4 ready, 0 rejected of 4 planned" in out.stderr
    results = scratch / "results"
    for i, name in enumerate(FIELDS, start=1):
        with rasterio.open(results / f"result_{name}.tif") as src:
            assert src.count == 1 and src.dtypes[0] == "uint8" and src.nodata == 255
            assert src.descriptions == (name,)
            cmap = src.colormap(1)
            arr = src.read(1)
        with rasterio.open(PROJECT / "truth" / f"{name}.tif") as truth:
            expected = truth.read(1)
        assert arr.shape == expected.shape
        valid = arr != 255
        assert valid.mean() > 0.9
        agree = (arr[valid] == expected[valid]).mean()
        assert agree > 0.9, f"{name}: {agree:.3f}"
        with rasterio.open(results / "result.tif") as multi:
            assert multi.count == 3 and multi.descriptions == FIELDS
            assert (multi.read(i) == arr).all()
        assert (results / f"result_{name}.png").stat().st_size > 0
        if name == "change":
            assert cmap[2][:3] == (255, 65, 54)
        else:
            assert cmap[1][:3] == (30, 110, 200) and cmap[2][:3] == (60, 160, 60)
    legend = json.loads((results / "legend.json").read_text())["bands"]
    assert [(e["field"], e["band_index"]) for e in legend] == [
        ("before", 1),
        ("after", 2),
        ("change", 3),
    ]
    assert [c["label"] for c in legend[2]["classes"]] == ["no_change", "change"]


def test_the_python_api_gives_the_same_heads(run, tmp_path: Path) -> None:
    out, scratch = run
    assert out.returncode == 0, out.stderr[-3000:]
    runner = EsPredictRunner.from_project(PROJECT, tmp_path / "api")
    paths = run_pipeline(runner)
    assert {p.name for p in paths} >= {f"result_{f}.tif" for f in FIELDS}
    for name in FIELDS:
        api = tmp_path / "api" / "results" / f"result_{name}.tif"
        with (
            rasterio.open(api) as a,
            rasterio.open(scratch / "results" / f"result_{name}.tif") as b,
        ):
            assert np.array_equal(a.read(), b.read()), name


def test_plan_status_and_check_take_the_unified_project(run, tmp_path: Path) -> None:
    out, scratch = run
    assert out.returncode == 0, out.stderr[-3000:]
    status = esrunner("status", "--scratch", str(scratch))
    assert status.returncode == 0, status.stderr
    assert "done" in status.stdout + status.stderr
    plan = esrunner("plan", str(PROJECT), "--scratch", str(tmp_path / "plan"))
    assert plan.returncode == 0, plan.stderr
    assert (tmp_path / "plan" / "plan" / "windows.geojson").is_file()
    check = esrunner("check", str(PROJECT), timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    # the manifest records the unified file among the run's inputs
    manifest = json.loads((scratch / "manifest.json").read_text())
    assert "olmoearth_config.yaml" in json.dumps(manifest)


def test_finetuning_a_unified_project_is_refused(tmp_path: Path) -> None:
    out = esrunner("finetune", str(PROJECT), "--scratch", str(tmp_path / "ft"))
    assert out.returncode == 2, out.stderr
    assert "unified" in out.stderr and "Traceback" not in out.stderr


def _vector_head(name: str, classes: list[str]) -> dict:
    return {
        "name": "manual",
        "decoder_layers": [
            {
                "class_path": "rslearn.models.tokens_to_channels.TokensToChannels",
                "init_args": {"in_dim": 128, "out_dim": 4},
            },
            {
                "class_path": "rslearn.models.pooling_decoder.PoolingDecoder",
                "init_args": {"in_channels": 48, "out_channels": len(classes)},
            },
            {"class_path": "rslearn.train.tasks.classification.ClassificationHead"},
        ],
        "task": {
            "class_path": "rslearn.train.tasks.classification.ClassificationTask",
            "init_args": {"property_name": name, "classes": classes},
        },
    }


def test_a_vector_output_is_one_geojson_with_a_property_per_field(tmp_path: Path) -> None:
    """Two classification heads (untrained: the format is checked, not the answers)."""
    import shutil

    import yaml

    project = tmp_path / "vector"
    shutil.copytree(
        PROJECT,
        project,
        ignore=shutil.ignore_patterns("checkpoint.ckpt", "truth", "scripts", "requirements.lock"),
    )
    cfg = yaml.safe_load((project / "olmoearth_config.yaml").read_text())
    classes = {"cover": ["water", "vegetation", "bare"], "changed": ["no", "yes"]}
    cfg["data"]["output"] = {
        "data_type": "vector",
        "fields": [
            {
                "name": name,
                "field_type": "classification",
                "allowed_values": [{"value": c, "label": c, "color": [0, 0, 0]} for c in values],
            }
            for name, values in classes.items()
        ],
    }
    cfg["model"]["tasks"] = {name: _vector_head(name, v) for name, v in classes.items()}
    (project / "olmoearth_config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = esrunner("run", str(project), "--scratch", str(tmp_path / "s"), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "s" / "results").iterdir()) == ["result.geojson"]
    features = json.loads((tmp_path / "s" / "results" / "result.geojson").read_text())["features"]
    assert features
    for f in features:
        assert f["properties"]["cover"] in classes["cover"]
        assert f["properties"]["changed"] in classes["changed"]
