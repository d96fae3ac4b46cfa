"""Rules on requirements.txt: it parses, keeps the package source, and fits the base.

A requirement that contradicts the base requirements is found with the lock's own
conflict check, without resolving anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs

# The base requirements of this toolchain's images (a source checkout's).
TOOLCHAIN_BASE = Path(__file__).resolve().parents[1] / "requirements" / "base.in"

# Options that change where packages come from (or pull in other files).
SOURCE_OPTIONS = (
    "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host",
    "-e", "--editable", "--no-index", "-r", "--requirement", "-c", "--constraint",
)  # fmt: skip
ALLOWED_OPTIONS = ("--hash", "--prefer-binary", "--only-binary", "--no-binary", "--pre")


def requirement_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each logical line, comments and continuations resolved."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    return out


def line_problem(text: str) -> tuple[str, str] | None:
    """(message, kind) for a line that is refused or does not parse, else None.

    ``kind`` is ``source`` (changes where packages come from) or ``syntax``.
    """
    first = text.split()[0]
    opt = first.split("=")[0]
    if opt.startswith("-"):
        if opt in SOURCE_OPTIONS:
            return f"option {opt} changes where packages come from", "source"
        if opt in ALLOWED_OPTIONS:
            return None
        return f"unknown option {opt}", "syntax"
    if first.startswith((".", "/", "~", "file:")) or re.match(r"^[A-Za-z]:[\\/]", first):
        return f"local path {first!r} is not a package from the index", "source"
    if "://" in text or re.match(r"^(git|hg|svn|bzr)\+", first):
        return "URL or VCS reference is not a package from the index", "source"
    spec = text.split(" --")[0].strip()
    try:
        req = Requirement(spec)
    except InvalidRequirement as e:
        return f"not a valid requirement: {e}", "syntax"
    if req.url:
        return "URL reference (name @ url) is not a package from the index", "source"
    return None


def check_requirements(project: ProjectDocs) -> list[Diagnostic]:
    """Every line of requirements.txt is a requirement from the index (or an allowed option)."""
    path = project.requirements
    if path is None:
        return []
    out = []
    for n, text in requirement_lines(path):
        found = line_problem(text)
        if found is None:
            continue
        msg, kind = found
        if kind == "source" and project.allow_sources:
            continue
        hint = (
            "packages come from the configured index only; a maintainer can allow this "
            "with --allow-sources"
            if kind == "source"
            else "use 'name[extras] <specifier>' as pip does"
        )
        out.append(Diagnostic(path, msg, line=n, hint=hint, rule="requirements"))
    return out
