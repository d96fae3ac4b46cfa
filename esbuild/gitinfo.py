"""What git says about the checkout: revision, branch and a project's version tag."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True)
class GitInfo:
    """Revision facts used for tags and labels (None where git cannot say)."""

    revision: str | None
    branch: str | None
    default_branch: str
    remote_url: str | None
    tags_at_head: tuple[str, ...]

    @property
    def short(self) -> str | None:
        """The short revision (7 characters), as docker/metadata-action's ``sha-`` tag."""
        return self.revision[:7] if self.revision else None

    def version(self, project: str) -> str | None:
        """The project's version: from a ``<project>_v<version>`` tag on HEAD, else None."""
        pattern = re.compile(rf"^{re.escape(project)}_v(\d[\w.+-]*)$")
        found = sorted(m.group(1) for t in self.tags_at_head if (m := pattern.match(t)))
        return found[-1] if found else None


def git_info(repo: Path) -> GitInfo:
    """Read revision, branch, default branch, remote and tags at HEAD."""
    head = _git(repo, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    default = head.split("/", 1)[1] if head and "/" in head else "main"
    tags = _git(repo, "tag", "--points-at", "HEAD") or ""
    return GitInfo(
        revision=_git(repo, "rev-parse", "HEAD"),
        branch=_git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        default_branch=default,
        remote_url=_git(repo, "remote", "get-url", "origin"),
        tags_at_head=tuple(tags.split()),
    )
