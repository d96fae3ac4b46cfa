"""esbuild changed: which projects a git change touches."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from esbuild.cli import cli
from esbuild.publish import changed_projects


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@x",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@x",
    )
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def commit(repo: Path, path: str, text: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"change {path}")
    return git(repo, "rev-parse", "HEAD")


def test_changed_projects(tmp_path: Path) -> None:
    repo = tmp_path
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "data/alpha/model.yaml", "a")
    commit(repo, "data/beta/model.yaml", "b")
    base = commit(repo, "rslp/__init__.py", "")
    commit(repo, "data/alpha/postprocessing_strategies.yaml", "x")
    assert changed_projects(repo, base) == ["data/alpha"]
    mid = git(repo, "rev-parse", "HEAD")
    commit(repo, "README.md", "docs only")
    assert changed_projects(repo, mid) == []
    commit(repo, "requirements/base.in", "numpy\n")
    assert changed_projects(repo, mid) == ["data/alpha", "data/beta"]
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        out = CliRunner().invoke(cli, ["changed", "--base", base, "--json"])
    finally:
        os.chdir(cwd)
    assert out.exit_code == 0 and json.loads(out.output) == ["data/alpha", "data/beta"]
