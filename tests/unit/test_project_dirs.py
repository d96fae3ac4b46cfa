"""What a project directory must hold for a prediction: no annotations, no request."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rslp.checks import check_project
from rslp.errors import ProjectError
from rslp.project import ProjectFiles
from tests.conftest import DEMO, REPO

FINETUNE_DEMO = REPO / "data" / "demo-finetune"


def _copy(src: Path, dst: Path, *leave: str) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("scratch", "__pycache__", *leave))
    return dst


def test_a_prediction_needs_no_annotations(tmp_path: Path) -> None:
    project = _copy(FINETUNE_DEMO, tmp_path / "ft", "annotations")
    found = check_project(project)
    assert not [d for d in found if d.severity == "error"], found
    notes = [d for d in found if d.rule == "finetune"]
    assert len(notes) == 1 and notes[0].severity == "notice"
    assert "fine-tuning will need annotations/annotation_task_features.geojson" in str(notes[0])
    assert notes[0].file.name == "finetune_strategies.yaml"
    # Asked for fine-tuning (validate --finetune), they are required.
    errors = [d for d in check_project(project, finetune=True) if d.severity == "error"]
    assert {d.file.name for d in errors} == {
        "annotation_task_features.geojson",
        "annotation_features.geojson",
    }, errors


def test_the_request_comes_with_the_run(tmp_path: Path) -> None:
    project = _copy(DEMO, tmp_path / "demo", "prediction")
    found = check_project(project)
    assert not [d for d in found if d.severity == "error"], found
    warning = [d for d in found if "no request here" in d.message]
    assert len(warning) == 1 and warning[0].severity == "warning"
    assert "esrunner run DIR --request FILE" in (warning[0].hint or "")
    with pytest.raises(ProjectError) as err:
        ProjectFiles.from_dir(project)
    assert "--request FILE" in str(err.value)
    request = DEMO / "prediction" / "test-request1.geojson"
    assert ProjectFiles.from_dir(project, request).request_geojson == request.resolve()


def test_a_platform_request_body_is_read_as_its_collection(tmp_path: Path) -> None:
    import json

    from rslp.request import load_request

    project = _copy(DEMO, tmp_path / "demo")
    path = project / "prediction" / "test-request1.geojson"
    collection = json.loads(path.read_text())
    body = {"geometry": collection, "model_pipeline_id": "p-1", "workflow_type": "PREDICTION"}
    path.write_text(json.dumps(body, indent=1))
    assert [f.id for f in load_request(path)] == [
        f.get("id") or f["properties"]["id"] for f in collection["features"]
    ]
    found = check_project(project)
    assert not [d for d in found if d.severity == "error"], found
    notes = [d for d in found if d.rule == "request" and d.severity == "notice"]
    assert len(notes) == 1
    assert "platform request body" in notes[0].message
    assert "model_pipeline_id, workflow_type ignored" in notes[0].message
    # Errors inside it name the key path and line as written.
    collection["features"][1]["properties"]["es_end_time"] = "2020-01-01T00:00:00+00:00"
    path.write_text(json.dumps(body, indent=1))
    errors = [d for d in check_project(project) if d.severity == "error"]
    assert len(errors) == 1 and errors[0].key == "geometry.features[1].properties", errors
    lines = path.read_text().splitlines()
    assert "2020-01-01" in "".join(lines[errors[0].line - 1 : errors[0].line + 8])
    with pytest.raises(ProjectError, match="time range is reversed") as err:
        load_request(path)
    assert err.value.key == "geometry.features[1].properties"


def test_a_scratch_url_is_never_taken_for_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unsupported URL is refused; an unreachable bucket fails before anything runs."""
    from click.testing import CliRunner

    from rslp.bucket import BucketError
    from rslp.cli import cli
    from rslp.espredict_runner import EsPredictRunner

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "node"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-shown")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    demo = DEMO
    for args in (["run", str(demo)], ["plan", str(demo)], ["status", str(demo)]):
        result = CliRunner().invoke(cli, [*args, "--scratch", "ftp://scratch/demo"])
        assert result.exit_code == 2, result.output
        assert "scheme ftp:// is not supported" in result.output
    result = CliRunner().invoke(cli, ["run", str(demo), "--scratch", "s3://k:s@b/x"])
    assert result.exit_code == 2 and "holds credentials" in result.output
    assert "k:s" not in result.output
    result = CliRunner().invoke(cli, ["run", str(demo), "--scratch", "s3://scratch/demo"])
    assert result.exit_code == 2, result.output
    assert "scratch s3://scratch/demo: checking the bucket failed: cannot connect" in result.output
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:9" in result.output
    assert "s3cr3t" not in result.output
    ft = ["finetune", str(FINETUNE_DEMO), "--scratch", "s3://scratch/ft"]
    result = CliRunner().invoke(cli, ft)
    assert result.exit_code == 2, result.output
    assert "scratch s3://scratch/ft: checking the bucket failed" in result.output
    assert "s3cr3t" not in result.output
    with pytest.raises(BucketError, match="scheme ftp:// is not supported"):
        EsPredictRunner.from_project(demo, "ftp://b/x")
    assert list(work.iterdir()) == []  # no directory named s3: or ftp:
