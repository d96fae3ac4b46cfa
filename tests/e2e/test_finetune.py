"""esrunner finetune on the demo: weak before, strong after, resumable, exportable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import shapely.geometry as sg
import torch
from pyproj import Transformer
from rasterio.features import rasterize

from rslp.esfinetune_runner import EsFineTuneRunner
from rslp.fsutil import sha256_file
from tests.conftest import REPO
from tests.e2e.test_cli_run import esrunner

pytestmark = pytest.mark.e2e
DEMO = REPO / "data" / "demo-finetune"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("finetune")
    scratch, export = root / "scratch", root / "data" / "demo-finetune-v2"
    out = esrunner("finetune", str(DEMO), "--scratch", str(scratch), "--export", str(export))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "validation accuracy:" in out.stdout
    return {"scratch": scratch, "ft": scratch / "finetune", "export": export}


def test_demo_finetune_lifts_validation_accuracy(tuned: dict[str, Path]) -> None:
    metrics = json.loads((tuned["ft"] / "metrics.json").read_text())
    assert metrics["before"]["accuracy"] <= 0.85
    assert metrics["after"]["accuracy"] >= 0.95
    for side in ("before", "after"):
        m = metrics[side]
        assert m["classes"] == ["land", "water"]
        assert np.asarray(m["confusion_matrix"]).sum() == metrics["splits"]["windows"]["val"]
        for c in ("land", "water"):
            assert set(m["per_class"][c]) == {"precision", "recall", "f1", "iou", "support"}
    assert metrics["splits"]["windows"]["train"] >= 200
    assert metrics["base_checkpoint"]["sha256"] == sha256_file(DEMO / "checkpoint.ckpt")
    assert (tuned["ft"] / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _agreement(result: Path) -> float:
    with rasterio.open(result) as src:
        arr, tr, crs = src.read(1), src.transform, src.crs
    lakes = json.loads((DEMO / "truth" / "lakes.geojson").read_text())["features"]
    to = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    polys = [
        shapely.transform(
            sg.shape(f["geometry"]), lambda c: np.column_stack(to.transform(c[:, 0], c[:, 1]))
        )
        for f in lakes
    ]
    truth = rasterize([(p, 1) for p in polys], out_shape=arr.shape, transform=tr, dtype="uint8")
    valid = arr != 255
    return float((arr[valid] == truth[valid]).mean())


def test_finetuned_checkpoint_drives_esrunner_run(tuned: dict[str, Path], tmp_path: Path) -> None:
    out = esrunner(
        "run", str(DEMO), "--scratch", str(tmp_path / "s"),
        "--checkpoint", str(tuned["ft"] / "checkpoint.ckpt"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert _agreement(tmp_path / "s" / "results" / "result.tif") >= 0.95


def test_evaluate_alone_in_a_fresh_process(tuned: dict[str, Path]) -> None:
    before = json.loads((tuned["ft"] / "metrics.json").read_text())
    (tuned["ft"] / "metrics.json").unlink()
    (tuned["ft"] / "report.png").unlink()
    out = esrunner("finetune", str(DEMO), "--scratch", str(tuned["scratch"]), "--steps", "evaluate")
    assert out.returncode == 0, out.stderr[-3000:]
    again = json.loads((tuned["ft"] / "metrics.json").read_text())
    assert again["before"] == before["before"] and again["after"] == before["after"]
    assert (tuned["ft"] / "report.png").is_file()


def test_exported_version_validates(tuned: dict[str, Path]) -> None:
    export = tuned["export"]
    assert sha256_file(export / "checkpoint.ckpt") == sha256_file(tuned["ft"] / "checkpoint.ckpt")
    card = (export / "MODEL_CARD.md").read_text()
    assert sha256_file(DEMO / "checkpoint.ckpt") in card and "git tag demo-finetune_v" in card
    assert json.loads((export / "metrics.json").read_text())["after"]["accuracy"] >= 0.95
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    out = subprocess.run([esbuild, "validate", str(export)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_fit_is_deterministic(tuned: dict[str, Path], tmp_path: Path) -> None:
    runner = EsFineTuneRunner.from_project(DEMO, tmp_path / "s")
    runner.prepare_windows()
    runner.build_dataset()
    ckpt = runner.fit()
    a = torch.load(ckpt, weights_only=False)["state_dict"]
    b = torch.load(tuned["ft"] / "checkpoint.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _epochs(csv_file: Path) -> list[int]:
    if not csv_file.is_file():
        return []
    lines = csv_file.read_text().splitlines()
    if not lines:
        return []
    col = lines[0].split(",").index("epoch")
    return [int(float(r.split(",")[col])) for r in lines[1:] if r.split(",")[col]]


def test_kill_9_during_fit_then_rerun_resumes(tmp_path: Path) -> None:
    project = tmp_path / "demo-finetune"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch"))
    scratch = tmp_path / "scratch"
    ft = scratch / "finetune"
    out = esrunner(
        "finetune", str(project), "--scratch", str(scratch),
        "--steps", "prepare_windows,build_dataset",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable, "-m", "rslp.cli", "finetune", str(project), "--scratch", str(scratch),
        "--steps", "fit", "--max-epochs", "10",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (ft / "trainer" / "last.ckpt").is_file() and max(
            _epochs(ft / "logs" / "fit001" / "metrics.csv"), default=-1
        ) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the fit ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (ft / "checkpoint.ckpt").exists()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads((ft / "fit.json").read_text())
    assert state["attempts"] == 2 and state["done"]
    resumed = _epochs(ft / "logs" / "fit002" / "metrics.csv")
    assert resumed and min(resumed) >= 1 and max(resumed) == 9  # went on, not from epoch 0
    assert (ft / "checkpoint.ckpt").is_file()


def test_labeled_windows_without_imagery_are_rejected_listed_and_floored(tmp_path: Path) -> None:
    from rslp.errors import StepError

    project = tmp_path / "ft"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    ann = project / "annotations"
    tasks = json.loads((ann / "annotation_task_features.geojson").read_text())
    labels = json.loads((ann / "annotation_features.geojson").read_text())
    gone = tasks["features"][-1]["properties"]["oe_annotations_task_id"]

    def east(coords: object) -> object:  # 0.5 degrees east: away from every scene
        if isinstance(coords[0], (int, float)):
            return [coords[0] + 0.5, *coords[1:]]
        return [east(c) for c in coords]

    for f in [tasks["features"][-1]] + [
        f for f in labels["features"] if f["properties"]["oe_annotations_task_id"] == gone
    ]:
        f["geometry"]["coordinates"] = east(f["geometry"]["coordinates"])
    (ann / "annotation_task_features.geojson").write_text(json.dumps(tasks))
    (ann / "annotation_features.geojson").write_text(json.dumps(labels))
    moved = sum(1 for f in labels["features"] if f["properties"]["oe_annotations_task_id"] == gone)

    runner = EsFineTuneRunner.from_project(project, tmp_path / "scratch")
    total = runner.prepare_windows()["windows"]
    with pytest.raises(StepError, match="below min_window_success_rate 0.9") as err:
        runner.build_dataset()
    assert "finetune_strategies.yaml: min_window_success_rate" in str(err.value)
    assert f"task {gone}" in str(err.value)

    cfg = project / "finetune_strategies.yaml"
    cfg.write_text(cfg.read_text() + "min_window_success_rate: 0.5\n")
    runner = EsFineTuneRunner.from_project(project, tmp_path / "scratch")
    assert runner.build_dataset() == total - moved
    ft = runner.scratch.root
    summary = json.loads((ft / "windows.json").read_text())
    assert sum(summary["rejected"].values()) == moved
    listing = json.loads((ft / "rejected_windows.geojson").read_text())["features"]
    assert len(listing) == moved
    assert {f["properties"]["feature_ids"][0] for f in listing} == {gone}
    assert {f["properties"]["reason"] for f in listing} == {"no_items"}
    from rslearn.dataset import Dataset
    from upath import UPath

    windows = Dataset(UPath(runner.scratch.dataset)).load_windows(groups=[summary["group"]])
    split = {w.name: w.options["split"] for w in windows}
    assert sorted(split.values()).count("rejected") == moved


def test_finetune_in_a_bucket_resumes_on_a_fresh_node(
    tuned: dict[str, Path], tmp_path: Path
) -> None:
    """Scratch in a bucket: the steps put finetune/ there, another node goes on from it."""
    import io

    from tests.s3fault import S3Server

    with S3Server() as s3:
        url = f"s3://{s3.bucket}/ft"
        client = s3.client()

        def on_node(node: str, *args: str) -> subprocess.CompletedProcess:
            env = dict(s3.subprocess_env(), PYTHONPATH=str(REPO))
            env["ESRUNNER_NODE_DIR"] = str(tmp_path / node)
            cmd = [sys.executable, "-m", "rslp.cli", "finetune", str(DEMO), "--scratch", url]
            out = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env)
            assert out.returncode == 0, out.stderr[-3000:]
            return out

        def listed() -> dict[str, dict]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix="ft/")
            return {o["Key"][3:]: o for page in pages for o in page.get("Contents", [])}

        def read(name: str) -> bytes:
            return client.get_object(Bucket=s3.bucket, Key=f"ft/{name}")["Body"].read()

        out = on_node("a", "--steps", "prepare_windows,build_dataset,fit")
        assert f"result: {url}/finetune/checkpoint.ckpt" in out.stdout
        first = listed()
        assert "finetune/.complete" in first and "finetune.lock" not in first  # released
        marker = json.loads(read("finetune/.complete"))
        assert {f"finetune/{n}" for n in marker["files"]} | {"finetune/.complete"} == set(first)
        ckpt = torch.load(io.BytesIO(read("finetune/checkpoint.ckpt")), weights_only=False)
        want = torch.load(tuned["ft"] / "checkpoint.ckpt", weights_only=False)["state_dict"]
        assert all(torch.equal(ckpt["state_dict"][k], want[k]) for k in want)

        # node b holds nothing: evaluate alone starts from the bucket's finetune/
        out = on_node("b", "--steps", "evaluate")
        assert f"result: {url}/finetune/metrics.json" in out.stdout
        metrics = json.loads(read("finetune/metrics.json"))
        local = json.loads((tuned["ft"] / "metrics.json").read_text())
        assert metrics["before"] == local["before"] and metrics["after"] == local["after"]
        second = listed()
        # what node b pulled and left alone is not sent again
        kept = [k for k in first if k.startswith("finetune/dataset/")]
        kept.append("finetune/checkpoint.ckpt")
        assert all(second[k]["LastModified"] == first[k]["LastModified"] for k in kept)
