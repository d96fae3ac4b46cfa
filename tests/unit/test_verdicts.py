"""The import check's pass, remembered per node: skipped only when nothing it read changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rslp.checks.preflight import preflight
from rslp.project import ProjectFiles
from tests.conftest import REPO

# One preflight in a fresh process: its error (empty: passed) and the model libraries it
# imported.
CHECK = """
import json, sys
from pathlib import Path
from rslp.checks.preflight import PreflightError, preflight
from rslp.project import ProjectFiles
try:
    preflight(ProjectFiles.from_dir(Path(sys.argv[1])))
    error = ""
except PreflightError as e:
    error = str(e)
print(json.dumps([error, [m for m in ("torch", "lightning") if m in sys.modules]]))
"""

# A model part (checked by the import pass only) whose constructor is its base class's.
BASE = """
import torch

class Base(torch.nn.Module):
    def __init__(self{extra}) -> None:
        super().__init__()

    def forward(self, x):
        return x
"""
PLUGIN = "from base_act import Base\n\nclass Act(Base):\n    pass\n"


def check(project: Path, node: Path, path: Path | None = None) -> tuple[str, list[str]]:
    """Preflight ``project`` in a fresh process with ``node`` as its node directory."""
    pythonpath = f"{REPO}:{path}" if path else str(REPO)
    env = {**os.environ, "ESRUNNER_NODE_DIR": str(node), "PYTHONPATH": pythonpath}
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    error, imported = json.loads(out.stdout.splitlines()[-1])
    return str(error), list(imported)


def remembered(node: Path) -> list[Path]:
    return sorted((node / "checked").glob("*.json")) if (node / "checked").exists() else []


def test_a_pass_is_remembered_and_the_next_process_imports_no_model(
    demo_copy: Path, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    assert check(demo_copy, node) == ("", ["torch", "lightning"])  # the first imports
    assert len(remembered(node)) == 1
    assert check(demo_copy, node) == ("", [])  # the same project again: remembered
    # Another request is not something the import check reads: still remembered.
    request = next((demo_copy / "prediction").glob("*.geojson"))
    request.write_text(request.read_text().replace("2024-06-01", "2024-06-02"))
    assert check(demo_copy, node) == ("", []) and len(remembered(node)) == 1


def test_a_changed_argument_is_checked_again_and_refused(demo_copy: Path, tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert check(demo_copy, node)[0] == "" and len(remembered(node)) == 1
    model = demo_copy / "model.yaml"
    text = model.read_text()
    old = "              kernel_size: 1\n"
    assert old in text
    model.write_text(text.replace(old, old + "              kernel_sise: 1\n", 1))
    assert "kernel_sise" in check(demo_copy, node)[0]
    assert len(remembered(node)) == 1  # a refusal is never remembered


def test_a_change_in_a_module_the_class_imports_is_checked_again(
    demo_copy: Path, tmp_path: Path
) -> None:
    """Not the class's own module: the base class it inherits its constructor from."""
    plugins, node = tmp_path / "plugins", tmp_path / "node"
    plugins.mkdir()
    (plugins / "base_act.py").write_text(BASE.format(extra=""))
    (plugins / "my_act.py").write_text(PLUGIN)
    model = demo_copy / "model.yaml"
    assert "{class_path: torch.nn.Identity}" in model.read_text()
    model.write_text(model.read_text().replace("torch.nn.Identity", "my_act.Act", 1))
    assert check(demo_copy, node, plugins) == ("", ["torch", "lightning"])
    assert check(demo_copy, node, plugins) == ("", [])
    # The inherited constructor now needs an argument the project does not give.
    (plugins / "base_act.py").write_text(BASE.format(extra=", level: int"))
    error, _ = check(demo_copy, node, plugins)
    assert "activation" in error and "missing required argument(s) ['level'] for Act" in error


def test_a_process_that_loaded_the_classes_before_remembers_nothing(
    demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code a long-lived process loaded may be older than the files the key describes."""
    import rslearn.models.conv  # noqa: F401  (one of the demo model's classes)

    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "node"))
    preflight(ProjectFiles.from_dir(demo_copy))
    assert remembered(tmp_path / "node") == []
