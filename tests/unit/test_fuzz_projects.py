"""No traceback on bad input, ever: every file of the demo projects, mutated at random.

Each example takes one file of a demo project and changes one value somewhere in it: replaced
by another JSON type, an empty container, a huge number or NaN; a key dropped or added. Then:

- ``esbuild validate`` exits 0 or 1, never 2 (an internal error), and when it exits 1 one of
  its errors names the mutated file (its path, or its name in the message);
- the run's preflight raises nothing but a PreflightError, naming that file too;
- when validation and preflight pass, the runner loads every config of the mutated project
  as a run would (strategies built, output layer read, request loaded). Preflight may
  refuse what validate only warns about (data a run reads, the prediction writer).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esbuild.cli import cli
from rslp.checks.preflight import PreflightError, preflight
from rslp.errors import ProjectError
from rslp.espredict_runner import EsPredictRunner
from rslp.project import ProjectFiles
from rslp.runner.context import RunContext
from rslp.runner.scratch import Scratch
from tests.conftest import REPO, assert_scratch_untouched

PROJECTS = {
    name: REPO / "data" / name
    for name in ("demo", "demo-vector", "olmoearth-cropland", "olmoearth-change")
}
# Reference-format variants: the same project as a variant dir (olmoearth_run_v.yaml +
# model_v.yaml) beside the default, with a dataset_build section to mutate.
VARIANT = "olmoearth-cropland (variants)"
PROJECTS[VARIANT] = PROJECTS["olmoearth-cropland"]
SEED_FILES = [
    "dataset.json",
    "model.yaml",
    "partition_strategies.yaml",
    "postprocessing_strategies.yaml",
    "request",
]
FILES = {
    "demo": SEED_FILES,
    "demo-vector": SEED_FILES,
    "olmoearth-cropland": [
        "dataset.json",
        "model.yaml",
        "olmoearth_run.yaml",
        "extra_model_files/config.json",
        "request",
    ],
    VARIANT: ["olmoearth_run_v.yaml", "model_v.yaml", "olmoearth_run.yaml"],
    "olmoearth-change": [
        "olmoearth_config.yaml",
        "olmoearth_config.yaml",
        "data_sources.yaml",
        "extra_model_files/config.json",
        "request",
    ],
}
DATASET_BUILD = {"min_window_success_rate": 0.5, "retry_max_attempts": 2, "retry_backoff": 0.5}


def _copy(name: str, dst: Path) -> None:
    """A fresh copy of a fuzzed project (the variant dir made from its source)."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(
        PROJECTS[name], dst, ignore=shutil.ignore_patterns("scratch", "scripts", "truth")
    )
    if name == VARIANT:
        run = yaml.safe_load((dst / "olmoearth_run.yaml").read_text())
        run["dataset_build"] = dict(DATASET_BUILD)
        (dst / "olmoearth_run_v.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
        shutil.copy(dst / "model.yaml", dst / "model_v.yaml")


REPLACEMENTS: list[Any] = [
    None, True, 0, -1, 7, 1e308, -1e308, math.nan, math.inf, "", "x", "1e9",
    [], {}, [1, "a"], {"zz_unknown": 1}, [[]], 16384 * 16384,
]  # fmt: skip


def _request(project: Path) -> Path:
    own = project / "prediction_request_geometry.geojson"
    return own if own.is_file() else sorted((project / "prediction").glob("*.geojson"))[0]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a parsed document (the root included)."""
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else data
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "drop":
        del parent[last]
    elif op == "add" and isinstance(parent[last], dict):
        parent[last]["zz_unknown_key"] = value
    elif op == "empty":
        parent[last] = type(parent[last])() if isinstance(parent[last], dict | list) else ""
    return data


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, tuple[Any, ...], str, Any]:
    project = draw(st.sampled_from(sorted(PROJECTS)))
    name = draw(st.sampled_from(FILES[project]))
    if project == VARIANT:
        _copy(project, SOURCES / "variants")
        src = SOURCES / "variants" / name
    else:
        src = _request(PROJECTS[project]) if name == "request" else PROJECTS[project] / name
    text = src.read_text()
    data = json.loads(text) if src.suffix in (".json", ".geojson") else yaml.safe_load(text)
    path = draw(st.sampled_from(_paths(data)))
    op = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add", "empty"]))
    if not path and op == "drop":
        op = "replace"
    value = draw(st.sampled_from(REPLACEMENTS))
    return project, name, path, op, value


def _write(dst: Path, data: Any) -> None:
    if dst.suffix in (".json", ".geojson"):
        dst.write_text(json.dumps(data))  # NaN and Infinity as Python's json writes them
    else:
        dst.write_text(yaml.safe_dump(data, sort_keys=False))


SOURCES = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-sources-{os.getpid()}"


def _names(text: str, target: Path) -> bool:
    return str(target) in text or target.name in text


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("FUZZ_EXAMPLES") is None,
)
@given(mutation=mutations())
def test_mutated_project_never_crashes_and_names_the_file(
    work: Path, mutation: tuple[str, str, tuple[Any, ...], str, Any]
) -> None:
    project_name, name, path, op, value = mutation
    project = work / "p"
    _copy(project_name, project)
    target = _request(project) if name == "request" else project / name
    text = target.read_text()
    data = json.loads(text) if target.suffix in (".json", ".geojson") else yaml.safe_load(text)
    _write(target, _mutate(data, path, op, value))

    out = CliRunner().invoke(cli, ["validate", str(project), "--format", "json"])
    assert out.exit_code in (0, 1), f"{mutation}: exit {out.exit_code}: {out.output[-2000:]}"
    assert "Traceback" not in out.output, out.output[-2000:]
    choice = {"run_config": "olmoearth_run_v.yaml"} if project_name == VARIANT else {}
    try:
        files = ProjectFiles.from_dir(project, **choice)
    except ProjectError as e:  # the files themselves: validate must have said so
        assert out.exit_code == 1, f"{mutation}: validate passed, the run refused: {e}"
        assert _names(f"{e.path} {e}", target), f"{mutation}: does not name {target.name}: {e}"
        return
    try:
        preflight(files)
        preflight_error = None
    except PreflightError as e:
        preflight_error = e
        # the Python API refuses it too, before it writes anything to scratch
        scratch = work / "refused"
        shutil.rmtree(scratch, ignore_errors=True)
        with pytest.raises(PreflightError):
            EsPredictRunner.from_files(files, scratch).partition()
        assert_scratch_untouched(scratch)
    if out.exit_code == 1:
        errors = [d for d in json.loads(out.stdout) if d["severity"] == "error"]
        assert any(_names(d["file"] + " " + d["message"], target) for d in errors), (
            f"{mutation}: no error names {target.name}: {errors}"
        )
    elif preflight_error is None:
        # What passes both must load as a run loads it.
        ctx = RunContext(files=files, scratch=Scratch(work / "scratch"))
        ctx.large_partitioner, ctx.small_partitioner, ctx.output_layer  # noqa: B018
        for key in ("strategy_small", "strategy_medium", "strategy_large"):
            ctx.postprocessor(key)
        from rslp.request import load_request

        assert load_request(files.request_geojson)
    if preflight_error is not None:
        assert any(_names(f"{d.file} {d.message}", target) for d in preflight_error.diagnostics), (
            f"{mutation}: preflight does not name {target.name}: {preflight_error}"
        )
