"""Imports a project's own requirements provide: checked in its image, noticed on the host.

A class path whose module does not import here, in a project whose requirements.txt adds
packages the base does not have, is not an error on the host: the project's environment (its
image) has what this one lacks. ``esbuild validate`` reports it as a notice ("not checked
here"), ``--require-imports`` keeps it an error, and ``esbuild validate --image REF`` and
``esbuild build`` run the checks inside the image, where they count.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
from pathlib import Path

from esbuild.image import BuildError, docker_cmd
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs

MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
IMAGE_PROJECT = "/project"


def added_packages(project: ProjectDocs) -> list[str]:
    """Packages requirements.txt names that the base requirements do not."""
    from esbuild import lock
    from esbuild.requirements import TOOLCHAIN_BASE

    if project.requirements is None:
        return []
    base = lock.read_pins(TOOLCHAIN_BASE.parent, Path(TOOLCHAIN_BASE.name))
    have = {p.name for p in base}
    own = lock.read_pins(project.requirements.parent, Path(project.requirements.name))
    return sorted({p.name for p in own} - have)


def _installable(module: str) -> bool:
    """Whether a package could provide ``module``: its top level is not installed here.

    ``rslp.helios`` missing while ``rslp`` imports is the project's mistake (a requirement
    does not add modules to an installed package); ``planetary_computer`` may be a
    requirement's.
    """
    return importlib.util.find_spec(module.split(".")[0]) is None


def notice_missing_imports(project: ProjectDocs) -> list[Diagnostic]:
    """Rule (host only): turn "No module named" class_path errors into notices.

    Only when the project adds packages and the module's top level is not installed here
    (else a missing module is the project's mistake);
    rewrites ``project.found`` in place, so the rules after it (the model parse) see a
    notice, not an error, and skip what they cannot check here.
    """
    adds = added_packages(project)
    if not adds:
        return []
    why = (
        "not checked here: needs the project's environment "
        f"(requirements.txt adds {', '.join(adds)})"
    )
    for i, d in enumerate(project.found):
        m = MISSING_MODULE.search(d.message)
        if d.rule == "class_path" and d.severity == "error" and m and _installable(m.group(1)):
            project.found[i] = dataclasses.replace(
                d,
                severity="notice",
                message=f"{why}: {d.message}",
                hint="esbuild build checks it inside the image (or: esbuild validate --image REF)",
            )
    return []


def check_in_image(
    image: str,
    project_dir: Path,
    deep: bool = False,
    finetune: bool = False,
    variant: list[str] | None = None,
) -> list[Diagnostic]:
    """Run ``esrunner check`` on ``project_dir`` inside ``image``: offline, as its user.

    ``variant`` holds the options that choose a model variant (``--run-config NAME``).

    The project is mounted read-only at /project; the findings come back as JSON and are
    located in ``project_dir`` again.

    Raises:
        BuildError: the check could not run (no engine, no such image, a crash).
    """
    project_dir = project_dir.resolve()
    cmd = [
        *docker_cmd(), "run", "--rm", "--network", "none",
        "-v", f"{project_dir}:{IMAGE_PROJECT}:ro", image,
        "check", IMAGE_PROJECT, "--format", "json", *(["--deep"] if deep else []),
        *(["--finetune"] if finetune else []), *(variant or []),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"the check inside {image} did not run: {e}") from None
    try:
        found = json.loads(proc.stdout) if proc.returncode in (0, 1) else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, list):
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-4:]
        raise BuildError(f"the check inside {image} did not run: " + " | ".join(tail))
    out = []
    for d in found:
        rel = Path(d["file"])
        rel = rel.relative_to(IMAGE_PROJECT) if rel.is_absolute() else rel
        fields = {k: d.get(k) for k in ("message", "key", "line", "hint", "rule", "severity")}
        out.append(Diagnostic(project_dir / rel, **fields))
    return out
