"""esbuild lock: merge, conflicts, policy, determinism and --check (real pip-tools)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from esbuild import lock as locking
from esbuild.cli import cli
from tests.conftest import REPO


def mini_repo(tmp_path: Path, base: str, project: str) -> Path:
    """A tiny repository: a base and one project, so resolution is quick."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.in").write_text(base)
    (tmp_path / "data" / "p").mkdir(parents=True)
    (tmp_path / "data" / "p" / "requirements.txt").write_text(project)
    return tmp_path / "data" / "p"


def test_conflict_with_a_base_pin_names_both_lines(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "requirements.txt").write_text("# needs an old torch\ntorch<2\n")
    inputs = locking.lock_inputs(project, REPO / "requirements" / "base.in")
    msgs = locking.conflicts(inputs)
    assert len(msgs) == 1
    assert "requirements.txt:2" in msgs[0] and "'torch<2'" in msgs[0]
    assert "requirements/base.in:" in msgs[0] and "torch==2.14.1" in msgs[0]
    with pytest.raises(locking.LockError, match="contradicts"):
        locking.lock(inputs)


@pytest.mark.parametrize(
    ("base", "project", "conflict"),
    [
        ("rslearn>=0.1.19,<0.2\n", "rslearn==0.3.0\n", True),
        ("rslearn>=0.1.19,<0.2\n", "rslearn>=0.1.19\n", False),
        ("numpy>=2\n", "numpy<2\n", True),
        ("numpy>1.5\n", "numpy<1.6\n", False),
        ("pydantic>=2\n", "click\n", False),
    ],
)
def test_conflict_detection(tmp_path: Path, base: str, project: str, conflict: bool) -> None:
    inputs = locking.lock_inputs(mini_repo(tmp_path, base, project))
    assert bool(locking.conflicts(inputs)) is conflict


def test_policy_refuses_source_options_unless_allowed(tmp_path: Path) -> None:
    p = mini_repo(tmp_path, "six\n", "--extra-index-url https://example.invalid/simple\nidna\n")
    inputs = locking.lock_inputs(p)
    with pytest.raises(locking.LockError, match="requirements.txt:1: option --extra-index-url"):
        locking.lock(inputs)
    assert locking.policy(inputs, allow_sources=True) == []


@pytest.mark.timeout(900)
def test_lock_merge_determinism_and_check(tmp_path: Path) -> None:
    p = mini_repo(tmp_path, "six==1.16.0\n", "idna>=3\n")
    inputs = locking.lock_inputs(p)
    path, resolved = locking.lock(inputs)
    assert resolved
    text = path.read_text()
    assert "six==1.16.0 \\" in text and "\nidna==" in text and "--hash=sha256:" in text
    assert "index-url" not in text and "find-links" not in text and "/opt/" not in text
    assert "# via -r requirements/base.in" in text and "# via -r data/p/requirements.txt" in text
    # Fast path: unchanged inputs, no resolution.
    t0 = time.perf_counter()
    assert locking.lock(inputs) == (path, False)
    assert time.perf_counter() - t0 < 1.0
    assert locking.check_lock(inputs) == []
    # A second resolution of the same inputs gives the same bytes.
    path.unlink()
    locking.lock(inputs)
    assert path.read_text() == text
    # Hand edit, then stale input: --check explains both.
    path.write_text(text.replace("idna==", "idna>="))
    assert any("edited by hand" in m for m in locking.check_lock(inputs))
    path.write_text(text)
    (p / "requirements.txt").write_text("idna>=3\ncharset-normalizer\n")
    assert any(
        "changed since" in m and "data/p/requirements.txt" in m for m in locking.check_lock(inputs)
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["lock", "--check", str(p)])
    assert res.exit_code == 1 and "stale lock" in res.output


@pytest.mark.timeout(900)
def test_resolver_failure_names_the_package(tmp_path: Path) -> None:
    p = mini_repo(tmp_path, "six\n", "esbuild-test-no-such-package-0f3a==1.0\n")
    with pytest.raises(locking.LockError) as e:
        locking.lock(locking.lock_inputs(p))
    assert "esbuild-test-no-such-package-0f3a" in str(e.value)


def test_committed_locks_are_current() -> None:
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        res = runner.invoke(cli, ["lock", "--check", "--all"])
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    assert "data/demo/requirements.lock: current" in res.output


@pytest.mark.timeout(900)
def test_a_project_resolves_only_what_it_adds_on_the_base_pins(tmp_path: Path) -> None:
    p = mini_repo(tmp_path, "idna==3.6\n", "# nothing beyond the base\n")
    inputs = locking.lock_inputs(p)
    path, resolved = locking.lock(inputs)
    assert resolved and (tmp_path / "requirements" / "base.lock").is_file()
    base_body = locking.read_header((tmp_path / "requirements" / "base.lock").read_text())[2]
    # nothing added: the project's pins are the base's, byte for byte
    assert locking.read_header(path.read_text())[2] == base_body
    # a package whose dependency the base pins keeps the base's pin, and adds its own
    (p / "requirements.txt").write_text("requests\n")
    assert any("stale" in m for m in locking.check_lock(inputs))
    locking.lock(inputs)
    body = locking.read_header(path.read_text())[2]
    assert "\nidna==3.6 \\" in "\n" + body and "\nrequests==" in body
    assert "# via -r data/p/requirements.txt" in body and "base-constraints" not in body
    for line in base_body.splitlines():
        assert line in body.splitlines()  # every base entry kept as the base lock has it
    # the base lock is an input: re-resolving it makes the project lock stale
    (tmp_path / "requirements" / "base.in").write_text("idna==3.7\n")
    assert any("changed since" in m for m in locking.check_lock(inputs))
    locking.lock(inputs)
    assert "\nidna==3.7 \\" in "\n" + locking.read_header(path.read_text())[2]
