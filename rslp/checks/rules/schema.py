"""Rule: every file against its shipped JSON Schema (Draft 2020-12)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document
from rslp.checks.project import ProjectDocs
from rslp.checks.schema import SCHEMA_FILES, shipped


def _errors(doc: Document, schema: dict[str, Any]) -> list[Diagnostic]:
    validator = Draft202012Validator(schema)
    out = []
    for err in sorted(
        validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        best = err
        if err.context:  # anyOf/oneOf: the deepest sub-error says most
            best = max(err.context, key=lambda e: len(e.absolute_path))
        path = tuple(best.absolute_path)
        out.append(doc.diag(best.message, path, hint=_hint(best), rule="schema"))
    return out


def _hint(err: Any) -> str | None:
    if err.validator == "required":
        return "add the missing key"
    if err.validator == "additionalProperties":
        return "remove the key, or check its spelling"
    return None


def check_schemas(project: ProjectDocs) -> list[Diagnostic]:
    """Validate each parsed document with its schema."""
    out: list[Diagnostic] = []
    for name, doc in project.docs.items():
        if (
            name in SCHEMA_FILES and doc.role is None
        ):  # a section: its file is checked  # JSON null parses too, and is checked like any value
            out += _errors(doc, shipped(SCHEMA_FILES[name]))
    for doc in project.requests:
        out += _errors(doc, shipped(SCHEMA_FILES["prediction"]))
    return out
