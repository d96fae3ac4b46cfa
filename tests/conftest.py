"""Shared fixtures: paths to the repository's projects and small real test data."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rslp.espredict_runner import EsPredictRunner

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
# The seed's sample project (its authors' real dir), kept in the repository so that a clone
# tests it alone; tests/unit/test_seed_fixture.py checks it against ../shared/seed when present.
SEED_SAMPLE = REPO / "tests" / "fixtures" / "esrunner_sample"
SEED_SAMPLE_ORIGIN = REPO.parent / "shared" / "seed" / "esrunner_sample"
# The seed sample's own problems, wherever it is checked: (file, rule) of each error.
SEED_SAMPLE_ERRORS = {
    ("model.yaml", "class_path"),  # the rslp.helios model classes
    ("model.yaml", "placeholder"),  # {PATCH_SIZE} and the like
    ("checkpoint.ckpt", "checkpoint"),  # empty
}


def scope_of(nodeid: str) -> str:
    """The unit a test process runs whole, so its fixtures are built once (pytest-xdist).

    Every Docker test shares one private engine (started and stopped by the session that
    runs them), so ``tests/docker`` is one scope; any other module is its own scope (its
    module fixtures, e.g. one demo run, serve all of its tests).
    """
    path = nodeid.split("::", 1)[0]
    return "tests/docker" if path.startswith("tests/docker/") else path


# Scopes that take minutes each (the Docker engine's tests, the Ray clusters, the bucket and
# fine-tune runs), slowest first: they start at once, one per process, and the many short
# modules fill in after them, so neither process ends with a long scope alone.
SLOW_FIRST = (
    "tests/docker",
    "tests/e2e/test_ray.py",
    "tests/e2e/test_finetune.py",
    "tests/e2e/test_bucket_scratch.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_cli_run.py",
    "tests/e2e/test_imperfect_data.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the :data:`SLOW_FIRST` scopes first (a stable sort: the rest keep their order)."""
    rank = {s: i for i, s in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(scope_of(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Schedule by :func:`scope_of` (``-n 2`` in scripts/test.sh), in collection order.

    pytest-xdist would otherwise order scopes by their number of tests, which puts the
    few long Ray tests last.
    """
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ScopeScheduling(config, log)


# Seconds each test process spent on each scope (setup, call and teardown of its tests), in
# the order it ran them: printed at the end so a slow CI run shows which process ended last.
_BUSY: dict[str, dict[str, float]] = {}
# Every test's seconds (its three phases), written as JSON to $ESRUNNER_TEST_TIMES if set.
_TESTS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add a test phase's duration to its process's scope (on the controller under xdist)."""
    node = getattr(report, "node", None)
    worker = getattr(node, "gateway", None)
    name = worker.id if worker is not None else "main"
    scopes = _BUSY.setdefault(name, {})
    scope = scope_of(report.nodeid)
    scopes[scope] = scopes.get(scope, 0.0) + report.duration
    _TESTS[report.nodeid] = _TESTS.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each test process's busy time and its scopes that took over 20 s, in the order run."""
    if not _BUSY:
        return
    if os.environ.get("ESRUNNER_TEST_TIMES"):
        Path(os.environ["ESRUNNER_TEST_TIMES"]).write_text(json.dumps(_TESTS, indent=1))
    terminalreporter.section("time per test process")
    for name, scopes in sorted(_BUSY.items()):
        total = sum(scopes.values())
        long = ", ".join(f"{s} {t:.0f}s" for s, t in scopes.items() if t > 20)
        terminalreporter.write_line(f"{name}: {total:.0f}s busy; {long}")


@pytest.fixture(scope="session", autouse=True)
def _session_node_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A node directory per test session (and test process): nothing a run keeps there
    (transpiled files, remembered import checks, projects read from a bucket) comes from an
    earlier session or outlives this one. Tests that need their own still set theirs."""
    old = os.environ.get("ESRUNNER_NODE_DIR")
    os.environ["ESRUNNER_NODE_DIR"] = str(tmp_path_factory.mktemp("node"))
    yield
    if old is None:
        os.environ.pop("ESRUNNER_NODE_DIR", None)
    else:
        os.environ["ESRUNNER_NODE_DIR"] = old


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A writable copy of the demo project (without any scratch)."""
    dst = tmp_path / "demo"
    shutil.copytree(DEMO, dst, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    return dst


def write_request(path: Path, features: list[dict]) -> Path:
    """Write a FeatureCollection request file."""
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def polygon_feature(coords: list[tuple[float, float]], **props: object) -> dict:
    """A GeoJSON polygon feature with the seed's time properties by default."""
    props.setdefault("es_start_time", "2024-06-01T00:00:00+00:00")
    props.setdefault("es_end_time", "2024-06-30T00:00:00+00:00")
    ring = [list(c) for c in coords] + [list(coords[0])]
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def run_pipeline(runner: EsPredictRunner) -> list[Path]:
    """Every step for every partition, as the seed's run_pipeline.py does."""
    partitions = runner.partition()
    for pid in partitions:
        runner.build_dataset(pid)
        runner.run_inference(pid)
        runner.postprocess(pid)
    return runner.combine(partitions)


def assert_scratch_untouched(scratch: Path) -> None:
    """A failed preflight leaves nothing in scratch but logs (no layers/, no manifest)."""
    left = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
    assert set(left) <= {"logs"}, f"scratch holds {left} after a failed preflight"
    assert not list(scratch.rglob("layers"))


def reference_model_yaml(text: str) -> str:
    """The demo's model.yaml as the reference runner's projects write it.

    Its template variables (``${PREDICTION_OUTPUT_LAYER}``, ``${NUM_WORKERS}``,
    ``${TRAINER_DATA_PATH}``, a WandbLogger of ``${WANDB_*}``), the writer's ``path:
    placeholder`` and ``${EXTRA_FILES_PATH}`` in a trailing comment.
    """
    text = text.replace("num_workers: 0", "num_workers: ${NUM_WORKERS}")
    text = text.replace(
        "  logger: false\n",
        "  default_root_dir: ${TRAINER_DATA_PATH}\n"
        "  logger:\n"
        "    class_path: lightning.pytorch.loggers.WandbLogger\n"
        "    init_args: {project: '${WANDB_PROJECT}', name: '${WANDB_NAME}',"
        " entity: '${WANDB_ENTITY}'}\n",
    )
    text = text.replace("output_layer: output", "output_layer: ${PREDICTION_OUTPUT_LAYER}")
    text = text.replace("        path: ${DATASET_PATH}\n", "        path: placeholder\n")
    assert "placeholder" in text and "${PREDICTION_OUTPUT_LAYER}" in text
    return text + "# unused: ${EXTRA_FILES_PATH}\n"


def reference_project(src: Path, dst: Path, run: dict, model_text: str | None = None) -> Path:
    """A reference-format project at ``dst``: ``src``'s data, ``run`` as olmoearth_run.yaml.

    The first request of ``src`` becomes ``prediction_request_geometry.geojson`` (its
    ``es_*`` times renamed ``oe_*``); model.yaml follows :func:`reference_model_yaml`.
    """
    import yaml

    shutil.copytree(
        src,
        dst,
        ignore=shutil.ignore_patterns(
            "scratch", "__pycache__", "*_strategies*.yaml", "prediction", "run_*.py"
        ),
    )
    (dst / "olmoearth_run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    request = sorted((src / "prediction").glob("*.geojson"))[0].read_text()
    request = request.replace('"es_start_time"', '"oe_start_time"')
    request = request.replace('"es_end_time"', '"oe_end_time"')
    (dst / "prediction_request_geometry.geojson").write_text(request)
    text = model_text if model_text is not None else (src / "model.yaml").read_text()
    (dst / "model.yaml").write_text(reference_model_yaml(text))
    return dst
