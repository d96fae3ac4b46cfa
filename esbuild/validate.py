"""Validate a project directory: its files against the schemas, then cross-file rules."""

from __future__ import annotations

from pathlib import Path

from esbuild.diagnostics import Diagnostic
from esbuild.documents import load_document
from esbuild.rules import RULES, ProjectDocs

REQUIRED = (
    "dataset.json",
    "model.yaml",
    "partition_strategies.yaml",
    "postprocessing_strategies.yaml",
)
REQUEST_DIRS = ("prediction", "prediction_requests")


def load_project(
    root: Path, deep: bool = False, allow_sources: bool = False
) -> tuple[ProjectDocs, list[Diagnostic]]:
    """Parse every file of a project; missing files and syntax errors become diagnostics."""
    diags: list[Diagnostic] = []
    docs = {}
    for name in REQUIRED:
        doc, errs = load_document(root / name)
        diags += errs
        if not errs:
            docs[name] = doc
    requests = []
    files = sorted(p for d in REQUEST_DIRS for p in (root / d).glob("*.geojson"))
    if not files:
        diags.append(
            Diagnostic(
                root / "prediction",
                "no *.geojson request in prediction/ or prediction_requests/",
                hint="add at least one prediction request",
                rule="files",
            )
        )
    for p in files:
        doc, errs = load_document(p)
        diags += errs
        if not errs:
            requests.append(doc)
    ckpt = root / "checkpoint.ckpt"
    reqs = root / "requirements.txt"
    project = ProjectDocs(
        root=root,
        docs=docs,
        requests=requests,
        checkpoint=ckpt if ckpt.exists() else None,
        requirements=reqs if reqs.exists() else None,
        deep=deep,
        allow_sources=allow_sources,
    )
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
    project, diags = load_project(root, deep, allow_sources)
    project.found = diags
    for rule in RULES:
        project.found += rule(project)
    return sorted(project.found, key=lambda d: (str(d.file), d.line or 0, d.key or "", d.message))
