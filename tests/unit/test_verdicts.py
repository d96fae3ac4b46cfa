"""The import check's pass, remembered per node: skipped when nothing it reads changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rslp.checks import verdicts
from rslp.checks.preflight import PreflightError, preflight
from rslp.checks.project import ProjectDocs
from rslp.project import ProjectFiles
from tests.conftest import REPO

PLUGIN = """
from rslp.common.postprocessing.raster import NoopRaster

class Mine(NoopRaster):
    def __init__(self, clip_to_request: bool = False{extra}) -> None:
        super().__init__(clip_to_request)
"""


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "node"))
    return tmp_path / "node"


def _remembered(node: Path) -> list[Path]:
    return sorted((node / "checked").glob("*.json")) if (node / "checked").exists() else []


def test_a_pass_is_remembered_and_the_next_process_imports_no_model(
    demo_copy: Path, node: Path, tmp_path: Path
) -> None:
    code = (
        "import json, sys; from pathlib import Path; from rslp.checks.preflight import preflight;"
        "from rslp.project import ProjectFiles;"
        f"preflight(ProjectFiles.from_dir(Path({str(demo_copy)!r})));"
        "print(json.dumps([m for m in ('torch', 'lightning') if m in sys.modules]))"
    )
    env = {**os.environ, "ESRUNNER_NODE_DIR": str(node), "PYTHONPATH": str(REPO)}

    def imported() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return list(json.loads(out.stdout.splitlines()[-1]))

    assert imported() == ["torch", "lightning"]  # the first check imports the model
    assert len(_remembered(node)) == 1
    assert imported() == []  # the same project again: remembered
    # Another request is not something the import check reads: still remembered.
    request = next((demo_copy / "prediction").glob("*.geojson"))
    request.write_text(request.read_text().replace("2024-06-01", "2024-06-02"))
    assert imported() == [] and len(_remembered(node)) == 1


def test_a_changed_argument_is_checked_again_and_refused(demo_copy: Path, node: Path) -> None:
    preflight(ProjectFiles.from_dir(demo_copy))
    assert len(_remembered(node)) == 1
    model = demo_copy / "model.yaml"
    text = model.read_text()
    old = "              kernel_size: 1\n"
    assert old in text
    model.write_text(text.replace(old, old + "              kernel_sise: 1\n", 1))
    with pytest.raises(PreflightError, match="kernel_sise"):
        preflight(ProjectFiles.from_dir(demo_copy))
    assert len(_remembered(node)) == 1  # a refusal is never remembered


def test_a_changed_module_source_is_checked_again(
    demo_copy: Path, node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_post.py").write_text(PLUGIN.format(extra=""))
    monkeypatch.syspath_prepend(str(plugins))
    cfg = demo_copy / "postprocessing_strategies.yaml"
    text = cfg.read_text()
    old = "rslp.common.postprocessing.raster.NoopRaster"
    assert old in text
    cfg.write_text(text.replace(old, "my_post.Mine", 1))
    preflight(ProjectFiles.from_dir(demo_copy))
    first = _remembered(node)
    assert len(first) == 1
    # The class now needs an argument the project does not give: the source changed.
    (plugins / "my_post.py").write_text(PLUGIN.format(extra=", *, level: int"))
    sys.modules.pop("my_post", None)
    project, _ = ProjectDocs.from_files(ProjectFiles.from_dir(demo_copy))
    assert [p.stem for p in first] != [verdicts.verdict_key(project)]
    with pytest.raises(PreflightError, match="level"):
        preflight(ProjectFiles.from_dir(demo_copy))
