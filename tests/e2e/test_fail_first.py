"""esrunner fails before compute on a broken project, and names the file to fix, once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO, SEED_SAMPLE, assert_scratch_untouched
from tests.e2e.test_cli_run import esrunner

pytestmark = pytest.mark.e2e

CHATTER = ("GPU available", "Seed set", "Tip:", "Loading windows", "format=", "it/s]", "TPU")


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def test_bad_postprocessing_config_fails_in_seconds_before_any_window(
    demo_copy: Path, tmp_path: Path
) -> None:
    cfg = demo_copy / "postprocessing_strategies.yaml"
    cfg.write_text(
        cfg.read_text().replace("clip_to_request: true", "clip_to_request: true\n    tile: 5")
    )
    scratch = tmp_path / "scratch"
    t0 = time.perf_counter()
    out = esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "1")
    elapsed = time.perf_counter() - t0
    assert out.returncode == 2, out.stderr[-3000:]
    errors = _errors(out.stderr)
    assert len(errors) == 1, errors
    assert f"{cfg}:" in errors[0] and "strategy_small.init_args" in errors[0]
    assert "unknown argument(s) ['tile'] for NoopRaster" in errors[0]
    assert elapsed < 60, elapsed  # seconds of imports and checks, no dataset, no model
    assert_scratch_untouched(scratch)


def test_request_away_from_the_imagery_names_request_features_and_layer(
    demo_copy: Path, tmp_path: Path
) -> None:
    request = demo_copy / "prediction" / "test-request1.geojson"
    data = json.loads(request.read_text())
    for f in data["features"]:  # the same shapes, 0.5 degrees east of the scene
        f["geometry"]["coordinates"] = [
            [[x + 0.5, y] for x, y in ring] for ring in f["geometry"]["coordinates"]
        ]
    request.write_text(json.dumps(data))
    scratch = tmp_path / "scratch"
    out = esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "2")
    assert out.returncode == 1, out.stderr[-3000:]
    errors = _errors(out.stderr)
    assert len(errors) == 1, errors  # every window rejected: the floor refuses, once
    line = errors[0]
    assert "below min_window_success_rate 0.9" in line
    assert "layer 'image': no item covers the window at its time" in line
    assert "dataset.json layers.image.data_source" in line and str(request) in line
    listing = scratch / "results" / "rejected_windows.geojson"
    assert str(listing) in line
    assert sorted(p.name for p in (scratch / "results").iterdir()) == [listing.name]
    ids = {f.get("id") or f["properties"].get("id") for f in data["features"]}
    listed = json.loads(listing.read_text())["features"]
    assert {i for f in listed for i in f["properties"]["feature_ids"]} >= {i for i in ids if i}


def test_checkpoint_that_does_not_fit_names_both_files_and_the_shapes(
    demo_copy: Path, tmp_path: Path
) -> None:
    model = demo_copy / "model.yaml"
    text = model.read_text()
    assert "              kernel_size: 1\n" in text
    model.write_text(
        text.replace("              kernel_size: 1\n", "              kernel_size: 3\n")
    )
    scratch = tmp_path / "scratch"
    out = esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "2")
    assert out.returncode == 2, out.stderr[-3000:]
    errors = _errors(out.stderr)
    assert len(errors) == 1, errors
    line = errors[0]
    assert f"{demo_copy / 'checkpoint.ckpt'}: does not fit {model}" in line
    assert (
        "parameter 'model.decoder.0.layer.weight' has shape [2, 16, 1, 1] in the checkpoint, "
        in line
    )
    assert "[2, 16, 3, 3] in the model" in line


def test_single_partition_console_is_quiet_and_the_log_keeps_the_rest(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "scripts"))
    scratch = tmp_path / "scratch"
    out = esrunner(
        "run", str(project), "--scratch", str(scratch), "--workers", "1",
        "--partition-id", "delta",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    noisy = [ln for ln in out.stderr.splitlines() if any(c in ln for c in CHATTER)]
    assert not noisy, noisy
    assert all(ln.startswith(("[", "skipped", "windows: ")) for ln in out.stderr.splitlines()), (
        out.stderr
    )
    assert out.stderr.splitlines()[-1].startswith("windows: 12 ready, 0 rejected of 12 planned")
    log = (scratch / "logs" / "esrunner.log").read_text()
    assert "GPU available" in log and "Config does not have subcommand" in log
    assert out.stdout.splitlines() == [
        f"result: {scratch / 'results' / 'result.tif'}",
        f"result: {scratch / 'results' / 'result.png'}",
    ]


def test_seed_sample_run_fails_first_naming_each_file(tmp_path: Path) -> None:
    sample = SEED_SAMPLE
    scratch = tmp_path / "scratch"
    out = esrunner("run", str(sample), "--scratch", str(scratch))
    assert out.returncode == 2, out.stderr[-3000:]
    errors = _errors(out.stderr)
    files = {ln.split(":")[1].strip().rsplit("/", 1)[-1] for ln in errors}
    assert {"dataset.json", "model.yaml", "checkpoint.ckpt"} <= files, errors
    assert_scratch_untouched(scratch)
