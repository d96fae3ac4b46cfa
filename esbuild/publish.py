"""Push a project's image to a registry, idempotently, and list projects a change touches.

Credentials come from the engine's own login (``docker login``), never from flags.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from esbuild.image import BuildError, docker_cmd
from rslp.formats import project_dirs

# Changes here touch every project's image.
SHARED_PATHS = ("rslp/", "requirements/", "Dockerfile", ".dockerignore", "pyproject.toml")
MOVING_TAGS = re.compile(r"^(latest|sha-[0-9a-f]+)$")


class PublishError(BuildError):
    """The image cannot be published, with a short reason."""


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*docker_cmd(), *args], capture_output=True, text=True)


def local_image_id(ref: str) -> str | None:
    """The id (config digest) of a local image, or None."""
    out = _docker("image", "inspect", "--format", "{{.Id}}", ref)
    return out.stdout.strip() if out.returncode == 0 else None


def remote_config_digest(ref: str) -> str | None:
    """The config digest of ``ref`` in its registry (None when the tag does not exist)."""
    out = _docker("manifest", "inspect", "--insecure", ref)
    if out.returncode != 0:
        if re.search(r"no such manifest|manifest unknown|not found", out.stderr, re.I):
            return None
        raise PublishError(f"cannot read {ref} from its registry: {out.stderr.strip()[-300:]}")
    manifest = json.loads(out.stdout)
    return (manifest.get("config") or {}).get("digest")


@dataclass
class PublishResult:
    """What publish did: the digest, and tags pushed or already there."""

    digest: str
    pushed: list[str]
    unchanged: list[str]


def publish(source: str, tags: list[str], force: bool = False) -> PublishResult:
    """Tag ``source`` as ``tags`` and push them.

    A version tag that already names a *different* image in the registry is refused
    unless ``force``; tags that already name this image are left alone; ``latest`` and
    ``sha-*`` move freely.

    Returns:
        the pushed manifest digest and what happened to each tag.

    Raises:
        PublishError: a missing image, a conflicting version tag, or a failed push.
    """
    image_id = local_image_id(source)
    if image_id is None:
        raise PublishError(f"no local image {source!r}: run 'esbuild build' first")
    pushed, unchanged = [], []
    digest = None
    for tag in tags:
        remote = remote_config_digest(tag)
        if remote == image_id:
            unchanged.append(tag)
            continue
        name_tag = tag.rsplit(":", 1)[-1]
        if remote is not None and not MOVING_TAGS.match(name_tag) and not force:
            raise PublishError(
                f"{tag} already names another image ({remote}); a version is published once: "
                "bump the version, or use --force"
            )
        if _docker("tag", source, tag).returncode != 0:
            raise PublishError(f"cannot tag {source} as {tag}")
        out = _docker("push", tag)
        if out.returncode != 0:
            raise PublishError(f"push of {tag} failed: {out.stderr.strip()[-400:]}")
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", out.stdout)
        digest = m.group(1) if m else digest
        pushed.append(tag)
    if digest is None:
        digest = repo_digest(tags[0]) or "unknown"
    return PublishResult(digest, pushed, unchanged)


BASE_LABEL = "io.esrunner.base-env"


def base_of(image: str) -> str:
    """The base image a project image was built on (its label; '' when not known)."""
    fmt = "{{ index .Config.Labels " + json.dumps(BASE_LABEL) + " }}"
    out = _docker("image", "inspect", "--format", fmt, image)
    value = out.stdout.strip() if out.returncode == 0 else ""
    return "" if value == "<no value>" else value


def publish_base(base: str, remote: str) -> str:
    """Push the base image ``base`` as ``remote`` unless the registry has it already.

    The base's name is the digest of what it is made of, so a registry holding that name
    holds that base (built here or by another run): it is pushed once, whatever image id
    a rebuild would get. Project images pushed after it reuse its layers.

    Returns:
        ``pushed``, ``unchanged`` (already there) or ``absent`` (not built here).

    Raises:
        PublishError: the push failed.
    """
    if local_image_id(base) is None:
        return "absent"
    if remote_config_digest(remote) is not None:
        return "unchanged"
    if _docker("tag", base, remote).returncode != 0:
        raise PublishError(f"cannot tag {base} as {remote}")
    out = _docker("push", remote)
    if out.returncode != 0:
        raise PublishError(f"push of {remote} failed: {out.stderr.strip()[-400:]}")
    return "pushed"


def repo_digest(ref: str) -> str | None:
    """The registry manifest digest of a pushed or pulled image."""
    out = _docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    if out.returncode != 0:
        return None
    repo = ref.rsplit(":", 1)[0]
    for d in json.loads(out.stdout or "[]"):
        if d.startswith(repo + "@"):
            return str(d.split("@", 1)[1])
    return None


def changed_projects(repo: Path, base: str, head: str = "HEAD") -> list[str]:
    """Project directories (``data/<p>``) that the change from ``base`` to ``head`` touches.

    A change to the runner, the base requirements, the Dockerfile or the packaging
    touches every project.
    """
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...{head}"], cwd=repo, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise PublishError(f"git diff {base}...{head} failed: {out.stderr.strip()}")
    files = [f for f in out.stdout.splitlines() if f]
    projects = [p.name for p in project_dirs(repo / "data")]
    if any(f.startswith(SHARED_PATHS) for f in files):
        return [f"data/{p}" for p in projects]
    touched = {f.split("/")[1] for f in files if f.startswith("data/") and f.count("/") >= 2}
    return [f"data/{p}" for p in projects if p in touched]
