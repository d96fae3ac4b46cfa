"""Preflight: the run's checks before any window, shared with esbuild validate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from esbuild import validate as validation
from esbuild.cli import cli as esbuild_cli
from esbuild.validate import validate_project
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.preflight import PreflightError, preflight
from rslp.errors import ProjectError
from rslp.espredict_runner import EsPredictRunner
from rslp.project import ProjectFiles
from tests.conftest import assert_scratch_untouched, polygon_feature, write_request
from tests.unit.test_esbuild_validate import CASES, edit_json, replace_text

# Rules only esbuild validate runs (build-time, or the slow LightningCLI parse).
VALIDATE_ONLY = {"requirements", "model"}


def _errors(project: Path) -> list:
    return [d for d in validate_project(project) if d.severity == "error"]


def _preflight_error(project: Path) -> PreflightError:
    try:
        files = ProjectFiles.from_dir(project)
    except ProjectError as e:  # a missing file: the run stops there, naming it
        return PreflightError([Diagnostic(e.path, e.message, e.key)])
    with pytest.raises(PreflightError) as err:
        preflight(files)
    return err.value


@pytest.mark.parametrize(
    ("mutate", "file", "message"), [(c[1], c[2], c[4]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_validate_finding_stops_the_run_too(
    demo_copy: Path, mutate: object, file: str, message: str
) -> None:
    mutate(demo_copy)  # type: ignore[operator]
    target = (demo_copy / file).resolve()
    found = [d for d in _errors(demo_copy) if d.file.resolve() == target and message in d.message]
    if all(d.rule in VALIDATE_ONLY for d in found):
        pytest.skip(f"{[d.rule for d in found]}: a validate-only rule")
    err = _preflight_error(demo_copy)
    assert any(d.file.resolve() == target and message in d.message for d in err.diagnostics), str(
        err
    )


def test_every_step_checks_first_and_writes_nothing(demo_copy: Path, tmp_path: Path) -> None:
    replace_text(
        "postprocessing_strategies.yaml", "clip_to_request: true", "clip_to_requests: true"
    )(demo_copy)
    scratch = tmp_path / "scratch"
    for call in (
        lambda r: r.partition(),
        lambda r: r.build_dataset("north-lakes"),
        lambda r: r.run_inference("north-lakes"),
        lambda r: r.postprocess("north-lakes"),
        lambda r: r.combine(["north-lakes"]),
        lambda r: r.run(),
    ):
        runner = EsPredictRunner.from_project(demo_copy, scratch)  # a fresh process's view
        with pytest.raises(PreflightError) as e:
            call(runner)
        assert "strategy_small.init_args" in str(e.value)
        assert "unknown argument(s) ['clip_to_requests']" in str(e.value)
        assert_scratch_untouched(scratch)


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (
            replace_text(
                "partition_strategies.yaml", "window_size: 128\n", "window_size: 1000000000\n"
            ),
            "strategy_large.init_args",
            "",
        ),
        (
            replace_text("partition_strategies.yaml", "grid_size: 128", "grid_size: 1000000000"),
            "strategy_small.init_args.grid_size",
            "windows of 1,000,000,000 px a side",
        ),
        (
            replace_text(
                "partition_strategies.yaml",
                "class_path: rslp.common.partitioners.fixed_window.FixedWindowPartitioner\n"
                "  init_args:\n    window_size: 128",
                "class_path: rslp.common.partitioners.grid.GridPartitioner\n"
                "  init_args:\n    grid_size: 0.000000001",
            ),
            "strategy_large.init_args.grid_size",
            "partitions for test-request1.geojson, over the limit of 10,000,000",
        ),
        (
            lambda d: [
                replace_text("partition_strategies.yaml", "grid_size: 128", "grid_size: 1")(d),
                replace_text("partition_strategies.yaml", "resolution: 10", "resolution: 0.1")(d),
            ],
            "strategy_small.init_args.grid_size",
            "over the limit of 10,000,000",
        ),
    ],
    ids=[
        "fixed-window-large-level-ignores-size",
        "window-too-large",
        "grid-1e-9-degrees",
        "1px-windows",
    ],
)
def test_plan_bounds_are_known_before_enumerating(
    demo_copy: Path, edit: object, key: str, message: str
) -> None:
    edit(demo_copy)  # type: ignore[operator]
    t0 = time.perf_counter()
    if not message:  # FixedWindow's window_size means nothing at the large level
        preflight(ProjectFiles.from_dir(demo_copy))
        return
    err = _preflight_error(demo_copy)
    assert time.perf_counter() - t0 < 10  # no enumeration (imports included)
    hits = [d for d in err.diagnostics if d.key == key and message in d.message]
    assert hits and hits[0].file.name == "partition_strategies.yaml", str(err)
    assert any(d.key == key for d in _errors(demo_copy))  # validate says the same


def test_max_windows_is_an_option_of_the_run(demo_copy: Path) -> None:
    files = ProjectFiles.from_dir(demo_copy)
    preflight(files)
    with pytest.raises(PreflightError, match=r"up to \d+ windows .* over the limit of 10"):
        preflight(files, max_windows=10)


@pytest.mark.parametrize(
    ("ring", "key", "message"),
    [
        ([[9.0, 45.0], [9.01, 45.0], [9.01, 45.01], [9.0, 45.01]], "coordinates[0]", "not closed"),
        ([[9.0, 45.0], [9.01, 45.0], [9.0, 45.0]], "coordinates[0]", "at least 4 positions"),
        (
            [[9.0, 45.0], [9.01, "45"], [9.01, 45.01], [9.0, 45.0]],
            "coordinates[0][1]",
            "not a number",
        ),
        (
            [[9.0, 45.0], [9.01, float("nan")], [9.01, 45.01], [9.0, 45.0]],
            "coordinates[0][1]",
            "not finite",
        ),
        (
            [[9.0, 45.0], [200.0, 45.0], [9.01, 45.01], [9.0, 45.0]],
            "coordinates[0][1]",
            "not lon/lat",
        ),
    ],
    ids=["unclosed", "three-positions", "string", "nan", "lon-200"],
)
def test_request_coordinates_are_checked_as_written(
    demo_copy: Path, ring: list, key: str, message: str
) -> None:
    feature = polygon_feature([(9.0, 45.0)] * 3)
    feature["geometry"]["coordinates"] = [ring]
    request = write_request(demo_copy / "prediction" / "test-request1.geojson", [feature])
    err = _preflight_error(demo_copy)
    want = f"features[0].geometry.{key}"
    assert any(
        d.file == request and d.key == want and message in d.message for d in err.diagnostics
    ), str(err)


def test_local_files_dir_outside_the_checkout_warns_in_validate_and_stops_a_run(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESRUNNER_TEST_IMAGERY", raising=False)
    for src, message in (
        ("imagery-elsewhere", "is not a directory"),
        ("${ESRUNNER_TEST_IMAGERY}/scenes", "['ESRUNNER_TEST_IMAGERY'] that are not set"),
    ):
        edit_json(
            "dataset.json",
            lambda d, src=src: d["layers"]["image"]["data_source"]["init_args"].update(src_dir=src),
        )(demo_copy)
        key = "layers.image.data_source.init_args.src_dir"
        diags = [d for d in validate_project(demo_copy) if d.key == key]
        assert [d.severity for d in diags] == ["warning"] and message in diags[0].message
        assert not _errors(demo_copy)
        err = _preflight_error(demo_copy)
        assert any(d.key == key and message in d.message for d in err.diagnostics)
    monkeypatch.setenv("ESRUNNER_TEST_IMAGERY", str(demo_copy))
    (demo_copy / "scenes").symlink_to(demo_copy / "imagery")
    preflight(ProjectFiles.from_dir(demo_copy))  # ${VAR} expands as rslearn expands it


def test_requirement_contradicting_the_base_fails_validate(demo_copy: Path) -> None:
    (demo_copy / "requirements.txt").write_text("numpy\ntorch<2\n")
    diags = [d for d in _errors(demo_copy) if d.file.name == "requirements.txt"]
    assert len(diags) == 1 and diags[0].line == 2, diags
    assert "contradicts requirements/base.in:" in diags[0].message
    assert "torch" in diags[0].message and "<2" in diags[0].message


def test_internal_error_is_one_line_and_the_traceback_goes_to_a_log(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_rule(project: object) -> list:
        raise KeyError("a bug")

    monkeypatch.setattr(validation, "BUILD_RULES", [*validation.BUILD_RULES, broken_rule])
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    out = CliRunner().invoke(esbuild_cli, ["validate", str(demo_copy)])
    assert out.exit_code == 2
    lines = [ln for ln in out.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "internal error: KeyError: 'a bug'" in lines[0]
    assert "Traceback" not in out.output
    # The log it names (this process's log file, or one it makes in the temp dir).
    log = Path(lines[0].split("traceback in ")[1].rstrip(")"))
    assert "Traceback" in log.read_text() and "broken_rule" in log.read_text()


def test_validate_stdout_holds_only_findings(demo_copy: Path) -> None:
    out = CliRunner().invoke(esbuild_cli, ["validate", str(demo_copy), "--format", "json"])
    assert out.exit_code == 0
    assert json.loads(out.stdout) == []


def _feature_collection(demo: Path) -> tuple[Path, dict]:
    path = demo / "prediction" / "test-request1.geojson"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("edit", "file", "message"),
    [
        (
            replace_text("model.yaml", "bands: [B1, B2, B3, B4]", "bands: [[1], B2]"),
            "model.yaml",
            "[[1]]",
        ),
        (
            replace_text("postprocessing_strategies.yaml", "clip_to_request: true", "1: a"),
            "postprocessing_strategies.yaml",
            "unknown argument(s) [1]",
        ),
        (
            replace_text("partition_strategies.yaml", "resolution: 10", "resolution: 1.0e-310"),
            "partition_strategies.yaml",
            "",
        ),
        (
            lambda d: (d / "dataset.json").write_text('{"layers": ' + "9" * 5000 + "}"),
            "dataset.json",
            "not valid JSON",
        ),
        (
            replace_text("prediction/test-request1.geojson", "8.620161", "1" + "0" * 400),
            "test-request1.geojson",
            "not finite",
        ),
    ],
    ids=["non-string-band", "int-key", "tiny-resolution", "huge-int-json", "huge-int-coordinate"],
)
def test_odd_values_are_findings_not_crashes(
    demo_copy: Path, edit: object, file: str, message: str
) -> None:
    edit(demo_copy)  # type: ignore[operator]
    out = CliRunner().invoke(esbuild_cli, ["validate", str(demo_copy), "--format", "json"])
    assert out.exit_code == 1, out.output[-2000:]
    errors = [d for d in json.loads(out.stdout) if d["severity"] == "error"]
    assert any(d["file"].endswith(file) and message in d["message"] for d in errors), errors
    with pytest.raises(PreflightError):
        preflight(ProjectFiles.from_dir(demo_copy))


def test_requests_are_read_as_the_runner_reads_them(demo_copy: Path) -> None:
    path, data = _feature_collection(demo_copy)
    files = ProjectFiles.from_dir(demo_copy)
    # A single Feature, and start/end from different key families, as load_request takes them.
    feature = data["features"][0]
    props = feature["properties"]
    props["oe_end_time"] = props.pop("es_end_time")
    props["es_start_time"], props["oe_start_time"] = None, props["es_start_time"]
    path.write_text(json.dumps(feature))
    preflight(files)
    # Ids as the runner makes them: unsafe ids are told apart, 1 and "1" are the same id.
    data["features"][0]["id"] = data["features"][1]["id"] = "field 1"
    path.write_text(json.dumps(data))
    preflight(files)
    data["features"][0]["id"], data["features"][1]["id"] = 1, "1"
    data["features"][2]["properties"]["id"] = ["a"]
    path.write_text(json.dumps(data))
    err = _preflight_error(demo_copy)
    assert [d.key for d in err.diagnostics] == ["features[1].id"], str(err)
    assert "feature id '1' repeats features[0]" in err.diagnostics[0].message


def test_max_windows_must_be_positive(demo_copy: Path) -> None:
    from rslp.cli import cli as esrunner_cli

    out = CliRunner().invoke(esrunner_cli, ["run", str(demo_copy), "--max-windows", "0"])
    assert out.exit_code == 2 and "--max-windows" in out.output
