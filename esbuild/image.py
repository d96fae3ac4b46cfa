"""Build a project's model image with a real Docker engine.

``build`` runs validation and ``lock --check`` first, then ``docker build`` of the root
``Dockerfile`` (target ``runtime``). Tags follow docker/metadata-action:
``<registry>/<namespace>/<project>:<version>`` when HEAD carries a ``<project>_v<version>``
git tag, ``:sha-<short>`` always, and ``:latest`` on the default branch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from esbuild.gitinfo import GitInfo, git_info
from esbuild.lock import entries, pin, read_header, render
from rslp.errors import RunnerError
from rslp.fsutil import sha256_file
from rslp.variants import Variant

STAGING = Path(".esbuild")
# What the Dockerfile bind-mounts, one directory per layer so that each layer's cache key is
# only its own pins and wheels. The base lock (the layers every project shares) is split,
# most stable first: cuda/ (the CUDA runtime wheels, gigabytes, pinned by torch: a torch
# bump usually changes them too), torch/ (torch, torchvision and triton) and base/ (every
# other base pin). On an engine whose build cache holds the earlier layers, a bump of an
# ordinary base pin so rebuilds, pushes and pulls only the last of them (layers are not
# byte-reproducible: a builder without that cache makes all three anew); and an engine
# pushes or pulls the layers side by side. project/: what the project's lock adds (empty
# for most).
BASE_PARTS = ("cuda", "torch", "base")
PARTS = (*BASE_PARTS, "project")
_TORCH = frozenset({"torch", "torchvision", "triton"})


def base_part(name: str) -> str:
    """The base layer (:data:`BASE_PARTS`) a distribution of the base lock goes in.

    Args:
        name: the canonical distribution name (``nvidia-cublas``).

    Returns:
        ``cuda``, ``torch`` or ``base``.
    """
    if name.startswith(("nvidia-", "cuda-")):
        return "cuda"
    return "torch" if name in _TORCH else "base"


CONFIG_FILES = (
    "dataset.json",
    "model.yaml",
    "partition_strategies.yaml",
    "postprocessing_strategies.yaml",
    "olmoearth_run.yaml",
    "olmoearth_config.yaml",
    "data_sources.yaml",
    "finetune_strategies.yaml",
    "prediction_request_geometry.geojson",
    "requirements.txt",
    "requirements.lock",
    "checkpoint.ckpt",
)


class BuildError(RunnerError):
    """The image cannot be built, with a short reason."""


def docker_cmd() -> list[str]:
    """The docker client (``ESBUILD_DOCKER`` overrides; ``DOCKER_HOST`` picks the engine).

    Builds use BuildKit (the Dockerfile bind-mounts the wheelhouse): it sends the build
    context incrementally, so a config-only rebuild does not resend the wheelhouse.
    """
    return os.environ.get("ESBUILD_DOCKER", "docker").split()


def image_name(project: str) -> str:
    """A project directory name as a valid image name component."""
    name = re.sub(r"[^a-z0-9._-]+", "-", project.lower()).strip("._-")
    if not name:
        raise BuildError(f"project name {project!r} has no characters usable in an image name")
    return name


def config_digest(project_dir: Path, variant: Variant | None = None) -> str:
    """SHA-256 over the project's config files (name and content, in a fixed order).

    A named variant's run and model configs are covered too.
    """
    h = hashlib.sha256()
    own = [p.name for p in (variant.run_config, variant.model_config) if p] if variant else []
    for name in [*CONFIG_FILES, *(n for n in own if n not in CONFIG_FILES)]:
        p = project_dir / name
        if p.exists():
            h.update(name.encode() + b"\0")
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return "sha256:" + h.hexdigest()


def model_labels(project_dir: Path) -> dict[str, str]:
    """Build arguments that become image labels: the checkpoint's and the model's quality.

    The checkpoint's SHA-256 and, from ``metrics.json`` (a fine-tuned version), the
    validation accuracy after fine-tuning.
    """
    ckpt = project_dir / "checkpoint.ckpt"
    out = {"CHECKPOINT_SHA256": sha256_file(ckpt) if ckpt.is_file() else ""}
    metrics = project_dir / "metrics.json"
    try:
        acc = json.loads(metrics.read_text())["after"]["accuracy"] if metrics.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        acc = None
    out["VAL_ACCURACY"] = f"{acc:.4f}" if isinstance(acc, int | float) else ""
    return out


def variant_image(project: str, variant: str = "") -> str:
    """The image name of a project's model variant: ``<project>`` or ``<project>-<variant>``.

    Two variants of a project never share a name; a project called ``a-b`` and variant
    ``b`` of project ``a`` would, so project names should not end like a variant.
    """
    return image_name(f"{project}-{variant}" if variant else project)


def default_tags(
    project: str, git: GitInfo, registry: str, namespace: str, variant: str = ""
) -> list[str]:
    """docker/metadata-action style tags for a project image (of one model variant)."""
    repo = "/".join(p for p in (registry, namespace, variant_image(project, variant)) if p)
    tags = []
    version = git.version(project)
    if version:
        tags.append(f"{repo}:{version}")
    if git.short:
        tags.append(f"{repo}:sha-{git.short}")
    if git.branch == git.default_branch or not tags:
        tags.append(f"{repo}:latest")
    return tags


def default_namespace(git: GitInfo) -> str:
    """The GitHub owner from the origin remote, else ``local``."""
    m = re.search(r"github\.com[:/]([^/]+)/", git.remote_url or "")
    return m.group(1).lower() if m else "local"


def fill_wheelhouse(repo: Path, lock: Path, out: Path) -> list[Path]:
    """Download every wheel of the lock, hash-checked by pip, and link them into the context.

    Each staged part (:func:`stage_locks`) gets the wheels of its own pins, in
    ``.esbuild/<part>/wheelhouse``.

    Args:
        repo: the repository root (the build context).
        lock: the project's requirements.lock.
        out: the host wheelhouse directory (kept between builds).

    Returns:
        the wheelhouses inside the build context, in :data:`PARTS` order.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock_hash = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    marker = out / f".complete-{lock_hash}"
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet",
        "--require-hashes", "--no-deps", "--only-binary=:all:", "--dest", str(out), "-r", str(lock),
    ]  # fmt: skip
    if not marker.exists():  # pip verified these files against the lock's hashes before
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Location" not in ln]
            raise BuildError(f"downloading the lock's wheels failed: {' '.join(tail[-3:])}")
        marker.touch()
    found = []
    for part_lock in stage_locks(repo, lock):
        ctx = part_lock.parent / "wheelhouse"
        ctx.mkdir(parents=True, exist_ok=True)
        wanted = _locked_names(part_lock)
        keep = {w.name for w in out.glob("*.whl") if _dist_key(w.name) in wanted}
        for old in ctx.iterdir():
            if old.name not in keep:
                old.unlink()
        for name in sorted(keep):
            if (ctx / name).exists():
                continue  # unchanged files keep their metadata, so the build cache holds
            try:
                os.link(out / name, ctx / name)
            except OSError:
                shutil.copy2(out / name, ctx / name)
        found.append(ctx)
    return found


def _dist_key(filename: str) -> str:
    name, version = filename.split("-")[:2]
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def _locked_names(lock: Path) -> set[str]:
    out = set()
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if m:
            out.add(f"{re.sub(r'[-_.]+', '-', m.group(1)).lower()}=={m.group(2)}")
    return out


BASE_REPO = "esrunner-env"
DEFAULT_OS_IMAGE = "python:3.11-slim-bookworm"


def base_digest(repo: Path, os_image: str | None = None) -> str:
    """The digest of what the base image is made of.

    The base lock's pins as the layers install them (:func:`base_bodies`), the
    Dockerfile's base stage and the OS image: every project on this base shares it; a
    change to any part makes a new base.
    """
    dockerfile = (repo / "Dockerfile").read_text()
    stage = dockerfile.split("FROM ${DEPS_FROM} AS deps", 1)[0]
    h = hashlib.sha256()
    layers = json.dumps(base_bodies(repo), sort_keys=False)
    for part in (layers, stage, os_image or DEFAULT_OS_IMAGE):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def base_ref(repo: Path, os_image: str | None = None) -> str:
    """The base image's local name: ``esrunner-env:<digest[:16]>``."""
    return f"{BASE_REPO}:{base_digest(repo, os_image)[:16]}"


def registry_prefix(tag: str) -> str:
    """``<registry>/<namespace>`` of an image tag (``''`` for a bare name)."""
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    return name.rsplit("/", 1)[0] if "/" in name else ""


def beside(tag: str, image: str) -> str:
    """``image`` (a local name) in the registry and namespace of ``tag``."""
    return f"{registry_prefix(tag)}/{image.rsplit('/', 1)[-1]}"


def ensure_base(
    plan: BuildPlan, ref: str, remote: str | None = None, log: Path | None = None
) -> str:
    """Make sure the engine has the base image ``ref``: found, pulled, or built once.

    Args:
        plan: the project build (its OS image, offline or not).
        ref: the base image's local name (:func:`base_ref`).
        remote: the same base in a registry, tried before building (then tagged ``ref``).
        log: where the base build's output goes.

    Returns:
        how: ``found`` in the engine, ``pulled`` from the registry, or ``built``.

    Raises:
        BuildError: the base build failed.
    """
    found = subprocess.run(
        [*docker_cmd(), "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
    )
    if found.returncode == 0:
        return "found"
    if remote:
        pulled = subprocess.run([*docker_cmd(), "pull", "--quiet", remote], capture_output=True)
        if pulled.returncode == 0:
            subprocess.run([*docker_cmd(), "tag", remote, ref], capture_output=True, check=True)
            return "pulled"
    stage_base(plan.repo)
    cmd = plan.command(target="base")
    cmd[-1:-1] = ["-t", ref, "--label", f"io.esrunner.base-digest={ref.rsplit(':', 1)[1]}"]
    _docker_build(cmd, build_log(plan, log, "base"), plan)
    return "built"


@dataclass
class BuildPlan:
    """Everything ``docker build`` gets."""

    repo: Path
    project: str
    tags: list[str]
    base_image: str | None
    offline: bool
    build_args: dict[str, str] = field(default_factory=dict)

    def command(
        self, iidfile: Path | None = None, target: str = "runtime", deps_from: str = ""
    ) -> list[str]:
        """The docker build command line (untagged, writing the id to ``iidfile`` if given).

        ``deps_from``: the base image the project's layers go on (default: the base stage,
        built in the same build); ``target`` ``base`` builds only that stage.
        """
        cmd = [*docker_cmd(), "build", "--target", target, "-f", str(self.repo / "Dockerfile")]
        args = {"PROJECT": self.project, **self.build_args}
        if target == "base":
            args = {}  # the base is the same for every project
        elif deps_from:
            args["DEPS_FROM"] = args["BASE_ENV"] = deps_from  # the label names it
        if self.base_image:
            args["BASE_IMAGE"] = self.base_image
        if not self.offline:
            args["PIP_SOURCE"] = ""  # the index, through the host's network
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        cmd += ["--network", "none" if self.offline else "host"]
        if iidfile is not None:
            cmd += ["--iidfile", str(iidfile)]
        else:
            for t in self.tags:
                cmd += ["-t", t]
        return [*cmd, str(self.repo)]


def plan_build(
    project_dir: Path,
    tags: list[str] | None = None,
    base_image: str | None = None,
    registry: str = "ghcr.io",
    namespace: str | None = None,
    offline: bool = True,
    variant: Variant | None = None,
) -> BuildPlan:
    """Work out tags, labels and build arguments for a project (one model variant of it).

    A named variant's image is ``<project>-<variant>`` and runs that variant by default
    (``ESRUNNER_RUN_CONFIG``/``ESRUNNER_MODEL_CONFIG`` set in the image).
    """
    project_dir = project_dir.resolve()
    repo = project_dir.parents[1]
    project = project_dir.name
    git = git_info(repo)
    ns = namespace if namespace is not None else default_namespace(git)
    name = variant.name if variant is not None else ""
    chosen = {
        "VARIANT": name,
        "RUN_CONFIG": variant.run_config.name if name and variant and variant.run_config else "",
        "MODEL_CONFIG": variant.model_config.name if name and variant else "",
    }
    labels = {
        **chosen,
        "VERSION": git.version(project) or "",
        "REVISION": git.revision or "",
        "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SOURCE": git.remote_url or "",
        "CONFIG_DIGEST": config_digest(project_dir, variant),
        **model_labels(project_dir),
    }
    return BuildPlan(
        repo=repo,
        project=project,
        tags=tags or default_tags(project, git, registry, ns, name),
        base_image=base_image,
        offline=offline,
        build_args=labels,
    )


def stage_locks(repo: Path, lock: Path) -> list[Path]:
    """Stage a project's pins as the Dockerfile's layers: the base's and the project's own.

    ``.esbuild/<part>/requirements.lock`` for each of :data:`BASE_PARTS` holds that part
    of the base lock's body (``requirements/base.lock``, :func:`base_bodies`), and
    ``.esbuild/project/requirements.lock`` the entries the project's lock adds to it
    (empty when it adds nothing). Only bodies are staged, never headers, so every project
    on the same base stages the same base parts and shares those layers.

    Returns:
        the staged lock files, in :data:`PARTS` order.

    Raises:
        BuildError: the base lock is missing or the project's lock was not made on it.
    """
    base_lock = repo / "requirements" / "base.lock"
    body = base_body(repo)
    base, _ = entries(body)
    mine, unsafe = entries(read_header(lock.read_text())[2])
    changed = [n for n in base if n in mine and pin(mine[n]) != pin(base[n])]
    if changed or not set(base) <= set(mine):
        raise BuildError(
            f"{lock} was not made on {base_lock} (pins differ: "
            f"{', '.join(changed[:3]) or 'entries missing'}): run 'esbuild lock' on the project"
        )
    added = {n: e for n, e in mine.items() if n not in base}
    return [*stage_base(repo), _stage(repo, "project", render(added, unsafe & set(added)))]


def stage_base(repo: Path) -> list[Path]:
    """Stage the base lock's parts (:func:`base_bodies`) for the Dockerfile's base layers.

    Returns:
        the staged lock files, in :data:`BASE_PARTS` order.
    """
    return [_stage(repo, part, body) for part, body in base_bodies(repo).items()]


def base_bodies(repo: Path) -> dict[str, str]:
    """The base lock's body split into :data:`BASE_PARTS` (by :func:`base_part`).

    Every part's entries keep their hashes; a part with no entries is empty (its layer
    installs nothing). The lock holds every dependency, so each part installs ``--no-deps``.

    Raises:
        BuildError: there is no base lock.
    """
    found, unsafe = entries(base_body(repo))
    parts: dict[str, dict[str, str]] = {p: {} for p in BASE_PARTS}
    for name, entry in found.items():
        parts[base_part(name)][name] = entry
    return {p: render(e, unsafe & set(e)) for p, e in parts.items()}


def base_body(repo: Path) -> str:
    """The base lock's body (its pins, without the header).

    Raises:
        BuildError: there is no base lock.
    """
    base_lock = repo / "requirements" / "base.lock"
    if not base_lock.is_file():
        raise BuildError(f"{base_lock} is missing: run 'esbuild lock' on a project first")
    return read_header(base_lock.read_text())[2]


def _stage(repo: Path, part: str, body: str) -> Path:
    """Write a part's pins to ``.esbuild/<part>/requirements.lock`` (unchanged: untouched)."""
    dst = repo / STAGING / part / "requirements.lock"
    dst.parent.mkdir(parents=True, exist_ok=True)
    (dst.parent / "wheelhouse").mkdir(exist_ok=True)
    if not dst.exists() or dst.read_text() != body:
        dst.write_text(body)
    return dst


NO_BUILDKIT = ("buildx component is missing", "requires BuildKit", "'buildx' is not a docker")


DEFAULT_OS_IMAGE = "python:3.11-slim-bookworm"  # the Dockerfile's BASE_IMAGE default
_OS_IMAGE = re.compile(r"(?:failed to resolve source metadata for|load metadata for) (\S+)")
_OS_IMAGE_FAILED = ("failed to do request", "failed to resolve source metadata", "pull access")
_UNREACHABLE = ("no such host", "dial tcp", "i/o timeout", "connection refused", "TLS handshake")
_NO_PACKAGE = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement) (?P<req>[A-Za-z0-9._-]+(?:\[[^\]]*\])?(?:==[^\s;)]+)?)"
)


def build_failure(output: str, plan: BuildPlan | None = None, log: Path | None = None) -> str:
    """One message for a failed ``docker build`` that says what to do.

    A client without BuildKit, an OS image whose registry cannot be reached
    (``--base-image``), a locked package the build cannot fetch (``--wheelhouse``); any
    other failure quotes its last lines. The whole output is in ``log``, which it names.
    """
    where = f" (the whole build log: {log})" if log is not None else ""
    if any(s in output for s in NO_BUILDKIT):
        client = " ".join(docker_cmd())
        return (
            f"the docker client ({client}) cannot build with BuildKit, which the Dockerfile "
            "needs (bind mounts): install its buildx plugin (Debian: docker-buildx), or point "
            "ESBUILD_DOCKER at a client that has BuildKit (e.g. ESBUILD_DOCKER=/usr/bin/docker)"
        )
    os_image = _OS_IMAGE.search(output)
    if os_image is not None and any(s in output for s in _OS_IMAGE_FAILED):
        ref = os_image.group(1).rstrip(":")
        given = plan.base_image if plan is not None and plan.base_image else DEFAULT_OS_IMAGE
        why = (
            "its registry cannot be reached"
            if any(s in output for s in _UNREACHABLE)
            else "the registry refused it (a wrong name, or it needs docker login)"
        )
        return (
            f"cannot get the OS image {given} ({ref}): {why}. Build on an image this engine "
            f"has: --base-image IMAGE (a Debian bookworm image with python3.11; offline, "
            "scripts/docker-engine.sh base-image makes esrunner-base:bookworm-py311 with "
            f"debootstrap){where}"
        )
    missing = _NO_PACKAGE.search(output)
    if missing is not None:
        req = missing.group("req")
        name = req.split("==")[0].split("[")[0]
        locks = _locks_naming(plan, name) if plan is not None else []
        named = f" (pinned in {', '.join(locks)})" if locks else ""
        return (
            f"the build cannot fetch {req}{named}: no wheel of it reaches the container. "
            "Give one: --wheelhouse DIR (esbuild fills it with pip download on this machine), "
            f"or build where the package index is reachable (without --wheelhouse){where}"
        )
    tail = [ln for ln in output.splitlines() if ln.strip()][-6:]
    return "docker build failed: " + " | ".join(tail) + where


def _locks_naming(plan: BuildPlan, name: str) -> list[str]:
    """The lock files (repository-relative) that pin ``name``."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    found = []
    for lock in (
        plan.repo / "requirements" / "base.lock",
        plan.repo / "data" / plan.project / "requirements.lock",
    ):
        if not lock.is_file():
            continue
        for line in lock.read_text().splitlines():
            pin = line.split("==")[0].strip()
            if "==" in line and re.sub(r"[-_.]+", "-", pin).lower() == key:
                found.append(str(lock.relative_to(plan.repo)))
                break
    return found


def build_log(plan: BuildPlan, log: Path | None, part: str = "") -> Path:
    """Where a build's whole output goes: ``log``, else ``.esbuild/logs/<project>.log``."""
    if log is not None:
        return log.with_name(log.name + f".{part}") if part else log
    name = f"{plan.project}{'-' + part if part else ''}.log"
    return plan.repo / ".esbuild" / "logs" / name


def run_build(plan: BuildPlan, log: Path | None = None, deps_from: str = "") -> str:
    """Run ``docker build``, untagged; returns the image id (tag it with :func:`tag_image`).

    ``deps_from``: the base image (:func:`ensure_base`) the project's layers go on.

    Raises:
        BuildError: the engine is unreachable or the build failed (last lines quoted).
    """
    stage_locks(plan.repo, plan.repo / "data" / plan.project / "requirements.lock")
    with tempfile.TemporaryDirectory() as tmp:
        iidfile = Path(tmp) / "iid"
        _docker_build(plan.command(iidfile, deps_from=deps_from), build_log(plan, log), plan)
        if not iidfile.exists():
            raise BuildError("docker build wrote no image id")
        return iidfile.read_text().strip()


def _docker_build(cmd: list[str], log: Path, plan: BuildPlan | None = None) -> None:
    """Run a ``docker build`` command line with BuildKit and plain progress.

    Raises:
        BuildError: the build failed (what to do, :func:`build_failure`; the whole output
            in ``log``).
    """
    cmd = list(cmd)
    cmd.insert(cmd.index("build") + 1, "--progress=plain")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, DOCKER_BUILDKIT="1")
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BuildError(build_failure(proc.stdout + proc.stderr, plan, log))


def tag_image(image_id: str, tags: list[str]) -> None:
    """Give the built image its tags.

    Raises:
        BuildError: the engine refused a tag.
    """
    for t in tags:
        proc = subprocess.run([*docker_cmd(), "tag", image_id, t], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"cannot tag {image_id} as {t}: {proc.stderr.strip()}")
