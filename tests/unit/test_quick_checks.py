"""The preflight's first pass: class paths told from sources, a broken project refused before
anything heavy is imported or spawned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rslp.plugins import ClassPathError, find_class, load_class
from tests.conftest import REPO, assert_scratch_untouched
from tests.unit.test_esbuild_validate import replace_text


@pytest.mark.parametrize(
    "class_path",
    [
        "rslearn.models.singletask.SingleTaskModell",  # the module exists, the class does not
        "rslearn.models.nope.Thing",  # a submodule that does not exist
        "nopackage_here.models.Thing",  # a package that is not installed
        "rslp.helios.model.Helios",  # the seed sample's
        "olmoearth_run.runner.tools.data_sources.Sentinel2L2A",  # the reference runner's
        "rslearn.data_sources.planetary_computer.Sentinel2",  # its module imports a package
        # that is not installed here: the class is there, the import would stop first
        "rslearn",  # not a dotted path
    ],
)
def test_a_missing_class_is_reported_as_the_import_would(class_path: str) -> None:
    static = find_class(class_path)
    assert isinstance(static, ClassPathError), class_path
    with pytest.raises(ClassPathError) as imported:
        load_class(class_path)
    assert str(static) == str(imported.value)
    assert static.missing == imported.value.missing
    assert static.hint == imported.value.hint


@pytest.mark.parametrize(
    "class_path",
    [
        "rslearn.models.singletask.SingleTaskModel",
        "rslearn.train.lightning_module.RslearnLightningModule",
        "rslearn.data_sources.local_files.LocalFiles",
        "torch.nn.Identity",  # a re-export in a compiled-heavy package
        "rslp.common.partitioners.grid.GridPartitioner",
    ],
)
def test_an_existing_class_is_found(class_path: str) -> None:
    assert find_class(class_path) is None


def test_finding_classes_imports_nothing_heavy() -> None:
    code = (
        "import sys; from rslp.plugins import find_class;"
        "paths = ['rslearn.train.lightning_module.RslearnLightningModule', 'torch.nn.Identity',"
        " 'rslearn.models.singletask.SingleTaskModell', 'rslearn.train.tasks.segmentation.X'];"
        "found = [str(find_class(p)) for p in paths];"
        "print(json.dumps([[m for m in ('torch', 'lightning', 'wandb') if m in sys.modules],"
        " found]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    )
    heavy, found = json.loads(out.stdout)
    assert heavy == []
    assert found[:2] == ["None", "None"]
    assert found[2] == "module rslearn.models.singletask has no class 'SingleTaskModell'"
    assert found[3] == "module rslearn.train.tasks.segmentation has no class 'X'"


def test_importing_the_runner_imports_no_model_library() -> None:
    """The seed's per-step scripts import EsPredictRunner first: it must not cost Lightning."""
    code = (
        "import json, sys; from rslp.espredict_runner import EsPredictRunner; import rslp.cli;"
        "print(json.dumps([m for m in ('torch', 'lightning', 'wandb') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def _esrunner(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from rslp.cli import main; sys.argv = ['esrunner', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "model.yaml",
            "rslearn.models.singletask.SingleTaskModel",
            "rslearn.models.singletask.SingleTaskModell",
            "has no class 'SingleTaskModell'",
        ),
        (
            "partition_strategies.yaml",
            "    grid_size: 128\n",
            '    grid_size: "big"\n',
            "grid_size: expected float",
        ),
        ("dataset.json", '"layers"', '"layer"', "layers"),
    ],
    ids=["model class", "strategy argument", "dataset schema"],
)
def test_a_broken_project_is_refused_before_torch_or_a_worker(
    demo_copy: Path, tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    replace_text(file, old, new)(demo_copy)
    scratch = tmp_path / "scratch"
    out = _esrunner("run", str(demo_copy), "--scratch", str(scratch), "--workers", "2")
    assert out.returncode == 2, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errors and message in errors[0] and file in errors[0], errors
    imported = {ln.split("|")[-1].strip() for ln in out.stderr.splitlines() if "|" in ln}
    assert not imported & {"torch", "lightning", "wandb"}, "a refusal imported the model stack"
    assert not list((scratch / "logs").glob("worker-*.log")), "a worker was started"
    assert_scratch_untouched(scratch)


def test_the_second_pass_still_binds_the_model_arguments(demo_copy: Path, tmp_path: Path) -> None:
    """A project whose only error needs the import (an unknown model argument) is refused."""
    replace_text("model.yaml", "{in_channels: 4,", "{inn_channels: 4,")(demo_copy)
    out = _esrunner("run", str(demo_copy), "--scratch", str(tmp_path / "s"))
    assert out.returncode == 2, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert all("model.yaml" in e for e in errors), errors
    assert any("unknown argument(s) ['inn_channels']" in e for e in errors), errors
    assert_scratch_untouched(tmp_path / "s")


def test_plan_leaves_the_model_classes_to_the_run(tmp_path: Path) -> None:
    out = _esrunner("plan", str(REPO / "data" / "demo"), "--scratch", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {ln.split("|")[-1].strip() for ln in out.stderr.splitlines() if "|" in ln}
    assert "torch" not in imported and "lightning" not in imported
    assert json.loads((tmp_path / "s" / "plan" / "windows.geojson").read_text())["features"]
