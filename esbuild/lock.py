"""Merge the base requirements with a project's and pin everything with hashes (pip-tools).

The lock is ``data/<project>/requirements.lock``: pip-compile output (``--generate-hashes``,
no index or find-links lines) under a header that records the SHA-256 of each input and of
the body. The header makes three things cheap: the no-change path (inputs unchanged: no
resolution), ``--check`` (stale inputs, or a body edited by hand) and reproducibility (the
same inputs and the same previous lock give the same bytes: pip-compile keeps existing pins).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from esbuild.requirements import TOOLCHAIN_BASE, line_problem, requirement_lines
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs
from rslp.errors import RunnerError
from rslp.fsutil import atomic_path

LOCK_NAME = "requirements.lock"
HEADER = "# esbuild lock: generated file, do not edit; run 'esbuild lock' instead."
TARGET = ("Linux", "x86_64", "3.11")

logger = logging.getLogger(__name__)


class LockError(RunnerError):
    """The lock cannot be made, with a short reason."""


@dataclass(frozen=True)
class LockInputs:
    """The files a lock is made from, as paths relative to the repository root.

    Attributes:
        repo: the repository root (pip-compile runs there, so annotations are relative).
        base: the base requirements (``requirements/base.in``).
        project: the project's ``requirements.txt``.
        lock: the lock file to write.
    """

    repo: Path
    base: Path
    project: Path
    lock: Path

    @property
    def base_lock(self) -> Path:
        """The base's own lock (``requirements/base.lock``), relative to the repository."""
        return self.base.with_suffix(".lock")

    def hashes(self, base_only: bool = False) -> dict[str, str]:
        """Relative path -> SHA-256 of each input file (the base lock included).

        With ``base_only``, of the base alone: the base lock's only input.
        """
        out = {}
        for p in (self.base,) if base_only else (self.base, self.base_lock, self.project):
            data = (self.repo / p).read_bytes() if (self.repo / p).exists() else b""
            out[p.as_posix()] = hashlib.sha256(data).hexdigest()
        return out


def lock_inputs(project_dir: Path, base: Path | None = None) -> LockInputs:
    """The lock inputs of a project directory (the repository root is found from it)."""
    project_dir = project_dir.resolve()
    repo = project_dir
    while repo != repo.parent and not (repo / "pyproject.toml").exists():
        repo = repo.parent
    base_path = (base or repo / "requirements" / "base.in").resolve()
    rel = lambda p: Path(os.path.relpath(p, repo))  # noqa: E731
    return LockInputs(
        repo=repo,
        base=rel(base_path),
        project=rel(project_dir / "requirements.txt"),
        lock=rel(project_dir / LOCK_NAME),
    )


def _header(hashes: dict[str, str], body: str) -> str:
    lines = [HEADER, f"# target: {' '.join(TARGET[:2])} CPython {TARGET[2]}"]
    lines += [f"# input: {path} sha256={h}" for path, h in sorted(hashes.items())]
    lines.append(f"# body: sha256={hashlib.sha256(body.encode()).hexdigest()}")
    return "\n".join(lines) + "\n"


def read_header(text: str) -> tuple[dict[str, str], str | None, str]:
    """(input hashes, recorded body hash, body) of a lock file's text."""
    inputs: dict[str, str] = {}
    body_hash = None
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        m = re.match(r"# input: (\S+) sha256=(\w+)", lines[i])
        if m:
            inputs[m.group(1)] = m.group(2)
        m = re.match(r"# body: sha256=(\w+)", lines[i])
        if m:
            body_hash = m.group(1)
        i += 1
    return inputs, body_hash, "".join(lines[i:])


def check_lock(inputs: LockInputs, base_only: bool = False) -> list[str]:
    """Why the lock is not current (empty when it is).

    With ``base_only``, ``inputs`` describe the base lock, whose only input is the base.
    """
    path = inputs.repo / inputs.lock
    if not path.exists():
        return [f"{inputs.lock} does not exist: run 'esbuild lock {inputs.lock.parent}'"]
    recorded, body_hash, body = read_header(path.read_text())
    problems = []
    if body_hash is None:
        problems.append(f"{inputs.lock} has no esbuild header: it was not made by 'esbuild lock'")
    elif hashlib.sha256(body.encode()).hexdigest() != body_hash:
        problems.append(f"{inputs.lock} was edited by hand (its body no longer matches its header)")
    wanted = inputs.hashes(base_only)
    if not base_only and not (inputs.repo / inputs.base_lock).exists():
        problems.append(f"{inputs.base_lock} does not exist: 'esbuild lock PROJECT' makes it")
    for p, h in wanted.items():
        if recorded.get(p) != h:
            problems.append(f"{p} changed since {inputs.lock} was made (stale lock)")
    return problems


@dataclass(frozen=True)
class Pin:
    """One requirement line: where it is and what it asks for."""

    file: Path
    line: int
    name: str
    specifier: SpecifierSet
    text: str


def read_pins(repo: Path, path: Path) -> list[Pin]:
    """The requirements of a file, with file:line (options and bad lines are skipped)."""
    if not (repo / path).exists():
        return []
    out = []
    for n, text in requirement_lines(repo / path):
        if text.startswith("-"):
            continue
        try:
            req = Requirement(text.split(" --")[0].strip())
        except InvalidRequirement:
            continue
        out.append(Pin(path, n, canonicalize_name(req.name), req.specifier, text))
    return out


def _candidates(a: SpecifierSet, b: SpecifierSet) -> list[Version]:
    out = []
    for spec in [*a, *b]:
        try:
            v = Version(spec.version.replace(".*", ""))
        except InvalidVersion:
            continue
        out += [v, Version(f"{v.base_version}.1"), Version(f"{v.base_version}.0.1")]
    return out


def compatible(a: SpecifierSet, b: SpecifierSet) -> bool:
    """Whether some version satisfies both specifiers (tested on the versions they name)."""
    if not str(a) or not str(b):
        return True
    cands = _candidates(a, b)
    if not cands:
        return True
    return any(a.contains(v, prereleases=True) and b.contains(v, prereleases=True) for v in cands)


def base_conflicts(inputs: LockInputs) -> list[tuple[Pin, Pin]]:
    """(project pin, base pin) pairs no version satisfies together; nothing is resolved."""
    base = {p.name: p for p in read_pins(inputs.repo, inputs.base)}
    return [
        (p, base[p.name])
        for p in read_pins(inputs.repo, inputs.project)
        if p.name in base and not compatible(base[p.name].specifier, p.specifier)
    ]


def conflict_message(project: Pin, base: Pin) -> str:
    """Why a project pin contradicts a base pin, the base's file:line named."""
    return (
        f"{project.text!r} contradicts {base.file}:{base.line}: {base.text!r} "
        f"(no {project.name} version satisfies both {project.specifier} and {base.specifier})"
    )


def conflicts(inputs: LockInputs) -> list[str]:
    """Project requirements that contradict a base requirement, both lines named."""
    return [f"{p.file}:{p.line}: {conflict_message(p, b)}" for p, b in base_conflicts(inputs)]


def policy(inputs: LockInputs, allow_sources: bool) -> list[str]:
    """Lines of the project's requirements that validation would refuse."""
    path = inputs.repo / inputs.project
    if not path.exists():
        return []
    out = []
    for n, text in requirement_lines(path):
        found = line_problem(text)
        if found and not (found[1] == "source" and allow_sources):
            out.append(f"{inputs.project}:{n}: {found[0]}")
    return out


RESOLVER_PATTERNS = [
    r"Could not find a version that matches ([^\n]+)",
    r"No matching distribution found for ([^\n]+)",
    r"(ResolutionImpossible[^\n]*)",
    r"conflict(?:s|ing)? [^\n]*",
]


def _resolver_message(stderr: str) -> str:
    for pat in RESOLVER_PATTERNS:
        m = re.search(pat, stderr)
        if m:
            return m.group(0).strip()
    tail = [
        ln
        for ln in stderr.strip().splitlines()
        if ln.strip() and not ln.startswith("WARNING: Location")
    ]
    return tail[-1] if tail else "pip-compile failed"


def check_platform() -> None:
    """Locks are resolved for the image platform: refuse to resolve elsewhere."""
    here = (platform.system(), platform.machine(), f"{sys.version_info[0]}.{sys.version_info[1]}")
    if here != TARGET:
        raise LockError(
            f"locks are resolved for {TARGET[0]} {TARGET[1]} CPython {TARGET[2]} (the image), "
            f"but this is {here[0]} {here[1]} CPython {here[2]}: run it in the image's platform"
        )


def _pip_compile(
    repo: Path, out: Path, sources: list[str], upgrade: tuple[str, ...], extra: list[str]
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
        "--allow-unsafe", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
        "--no-header", "--output-file", os.path.relpath(out, repo), *extra,
    ]  # fmt: skip
    for name in upgrade:
        cmd += ["--upgrade-package", name]
    return subprocess.run(cmd + sources, cwd=repo, capture_output=True, text=True)


def check_base_lock(inputs: LockInputs) -> list[str]:
    """Why ``requirements/base.lock`` is not current (empty when it is)."""
    return check_lock(LockInputs(inputs.repo, inputs.base, inputs.base, inputs.base_lock), True)


def lock_base(inputs: LockInputs, upgrade: tuple[str, ...] = (), force: bool = False) -> bool:
    """Make or refresh ``requirements/base.lock``: the base resolved alone (slow, once).

    Returns:
        whether a resolution ran.

    Raises:
        LockError: the resolver failed (the packages named).
    """
    out = inputs.repo / inputs.base_lock
    if not upgrade and not force and not check_base_lock(inputs):
        return False
    check_platform()
    with atomic_path(out) as tmp:
        if out.exists():  # keep existing pins: same inputs, same result
            tmp.write_text(read_header(out.read_text())[2])
        proc = _pip_compile(inputs.repo, tmp, [str(inputs.base)], upgrade, [])
        if proc.returncode != 0 and out.exists():
            # pip-compile holds existing pins fixed: a new base requirement that needs an
            # older transitive pin (s3fs's botocore range) cannot resolve on them.
            logger.warning(
                "%s: the base's pins conflict with %s; resolving the base afresh",
                inputs.base_lock,
                inputs.base,
            )
            tmp.write_text("")
            proc = _pip_compile(inputs.repo, tmp, [str(inputs.base)], upgrade, [])
        if proc.returncode != 0:
            raise LockError(
                f"resolution failed for {inputs.base}: {_resolver_message(proc.stderr)}"
            )
        body = tmp.read_text()
        tmp.write_text(_header(inputs.hashes(base_only=True), body) + body)
    return True


UNSAFE_MARK = "# The following packages are considered to be unsafe in a requirements file:"
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def entries(body: str) -> tuple[dict[str, str], set[str]]:
    """A pip-compile body as canonical name -> its entry's lines, and the unsafe names."""
    entries: dict[str, str] = {}
    unsafe: set[str] = set()
    name, in_unsafe = None, False
    for line in body.splitlines(keepends=True):
        if line.startswith(UNSAFE_MARK):
            in_unsafe, name = True, None
            continue
        m = _ENTRY.match(line)
        if m:
            name = canonicalize_name(m.group(1))
            entries[name] = line
            if in_unsafe:
                unsafe.add(name)
        elif name is not None and line.startswith((" ", "\t")):
            entries[name] += line
    return entries, unsafe


def pin(entry: str) -> str:
    """The ``name==version`` line of an entry of :func:`entries`."""
    return entry.split(" ", 1)[0].strip()


def render(entries: dict[str, str], unsafe: set[str]) -> str:
    """Entries back into a pip-compile body (by name; unsafe ones last, as pip-compile does)."""
    safe = [entries[n] for n in sorted(entries) if n not in unsafe]
    out = "".join(safe)
    if unsafe:
        out += "\n" + UNSAFE_MARK + "\n" + "".join(entries[n] for n in sorted(unsafe))
    return out


def lock(
    inputs: LockInputs,
    upgrade: tuple[str, ...] = (),
    allow_sources: bool = False,
    force: bool = False,
) -> tuple[Path, bool]:
    """Make or refresh a project's lock: the base lock plus what the project adds.

    The base is locked once, alone (``requirements/base.lock``, :func:`lock_base`); a
    project's lock is that body with the project's additions resolved against the base's
    pins held fixed (pip constraints): a project that adds nothing needs no resolution, and
    one that adds a package resolves only that package's tree. Every project image so
    installs the base's exact pins (the same dependency layer where nothing is added).

    Args:
        inputs: what to lock.
        upgrade: packages to move to their newest allowed version (in the base lock when
            the base has them).
        allow_sources: allow project requirement options that change package sources.
        force: resolve even when the inputs are unchanged.

    Returns:
        (the lock path, whether a resolution ran).

    Raises:
        LockError: policy refusals, conflicts with the base (both lines named), resolver
            failures (the packages named).
    """
    problems = policy(inputs, allow_sources) + conflicts(inputs)
    if problems:
        raise LockError("; ".join(problems))
    out = inputs.repo / inputs.lock
    if not upgrade and not force and not check_lock(inputs):
        return out, False
    check_platform()
    lock_base(inputs, upgrade)
    base_body = read_header((inputs.repo / inputs.base_lock).read_text())[2]
    base, unsafe = entries(base_body)
    body = base_body
    project = inputs.repo / inputs.project
    if project.exists() and read_pins(inputs.repo, inputs.project):
        with tempfile.TemporaryDirectory() as t:  # not in .esbuild/: the build context
            pins, tmp = Path(t) / "base-constraints.txt", Path(t) / "project.lock"
            pins.write_text("".join(pin(e) + "\n" for e in base.values()))
            if out.exists():  # keep existing pins: same inputs, same result
                tmp.write_text(read_header(out.read_text())[2])
            extra = ["--constraint", str(pins)]
            proc = _pip_compile(inputs.repo, tmp, [str(inputs.project)], upgrade, extra)
            if proc.returncode != 0:
                raise LockError(
                    f"resolution failed for {inputs.lock.parent}: {_resolver_message(proc.stderr)}"
                )
            added, added_unsafe = entries(tmp.read_text())
        new = {n: e for n, e in added.items() if n not in base}
        body = render({**base, **new}, unsafe | (added_unsafe & set(new)))
    hashes = inputs.hashes()
    with atomic_path(out) as tmp:
        tmp.write_text(_header(hashes, body) + body)
    return out, True


def check_requirement_conflicts(project: ProjectDocs) -> list[Diagnostic]:
    """A requirement no version of which also satisfies the base's pin (e.g. ``torch<2``)."""
    if project.requirements is None:
        return []
    inputs = lock_inputs(project.root)
    if not (inputs.repo / inputs.base).exists():  # a project outside this repository
        repo = TOOLCHAIN_BASE.parents[1]
        rel = Path(os.path.relpath(project.requirements, repo))
        inputs = LockInputs(repo, TOOLCHAIN_BASE.relative_to(repo), rel, rel)
    return [
        Diagnostic(
            project.requirements,
            conflict_message(p, b),
            line=p.line,
            hint="the base pins it for every project image; drop or widen the requirement",
            rule="requirements",
        )
        for p, b in base_conflicts(inputs)
    ]
