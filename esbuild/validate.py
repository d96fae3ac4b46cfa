"""Validate a project directory: its files against the schemas, then cross-file rules.

The rules are the runner's own (:mod:`rslp.checks`), so a project that validates passes
the run's preflight; validation adds what only a build needs (the requirements policy and
their conflicts with the base) and the slow checks (a real rslearn parse of model.yaml, and
with ``deep`` the checkpoint loaded into it).
"""

from __future__ import annotations

from pathlib import Path

from esbuild.requirements import check_requirement_conflicts, check_requirements
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ROLES, ProjectDocs
from rslp.checks.rules import (
    PREFLIGHT_RULES,
    Rule,
    check_checkpoint_fits,
    check_lightning_parse,
    run_rules,
)
from rslp.project import REQUEST_DIRS

RULES: list[Rule] = [
    *PREFLIGHT_RULES,
    check_requirements,
    check_requirement_conflicts,
    check_lightning_parse,
    check_checkpoint_fits,
]


def load_project(
    root: Path, deep: bool = False, allow_sources: bool = False
) -> tuple[ProjectDocs, list[Diagnostic]]:
    """Parse every file of a project; missing files and syntax errors become diagnostics."""
    requests = sorted(p for d in REQUEST_DIRS for p in (root / d).glob("*.geojson"))
    ckpt = root / "checkpoint.ckpt"
    reqs = root / "requirements.txt"
    project, diags = ProjectDocs.load(
        root,
        {role: root / role for role in ROLES},
        requests,
        checkpoint=ckpt if ckpt.exists() else None,
        requirements=reqs if reqs.exists() else None,
        deep=deep,
        allow_sources=allow_sources,
    )
    if not requests:
        missing = Diagnostic(
            root / "prediction",
            "no *.geojson request in prediction/ or prediction_requests/",
            hint="add at least one prediction request",
            rule="files",
        )
        project.found.append(missing)
        diags.append(missing)
    return project, diags


def validate_project(
    root: Path, deep: bool = False, allow_sources: bool = False
) -> list[Diagnostic]:
    """Every problem of a project directory, all at once (errors and warnings).

    Args:
        root: the project directory.
        deep: also load the checkpoint into the model built from model.yaml.
        allow_sources: allow requirements options that change where packages come from.

    Returns:
        diagnostics, in file then line order. Nothing is written into ``root``.
    """
    root = root.resolve()
    if not root.is_dir():
        return [Diagnostic(root, "project directory does not exist", rule="files")]
    project, _ = load_project(root, deep, allow_sources)
    return run_rules(project, RULES)
