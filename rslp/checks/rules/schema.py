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
        out.append(doc.diag(_message(best), path, hint=_hint(best), rule="schema"))
    return out


SHORT = 60  # longer values are described, not quoted: the key path says where they are


def _message(err: Any) -> str:
    """The message jsonschema gives, a long value it quotes (a whole feature) described."""
    msg = str(err.message)
    quoted = repr(err.instance)
    if len(quoted) <= SHORT or quoted not in msg:
        return msg
    return msg.replace(quoted, describe(err.instance), 1)


def describe(value: Any) -> str:
    """A short description of a value: ``an object with keys ['a', 'b']``, ``a list of 3``."""
    if isinstance(value, dict):
        keys = sorted(map(str, value))
        shown = keys[:5] + (["..."] if len(keys) > 5 else [])
        return f"an object with keys {shown}"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    text = repr(value)
    return text[: SHORT - 3] + "..." if len(text) > SHORT else text


def _hint(err: Any) -> str | None:
    if err.validator == "required":
        return "add the missing key"
    if err.validator == "additionalProperties":
        return "remove the key, or check its spelling"
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = err.schema.get("minimum"), err.schema.get("maximum")
        if lo is not None and hi is not None:
            fix = f"use a value from {lo:g} to {hi:g}"
        elif lo is not None:
            fix = f"use a value of at least {lo:g}"
        elif hi is not None:
            fix = f"use a value of at most {hi:g}"
        else:
            fix = "use a value in range"
        about = str(err.schema.get("description") or "").split(";")[0].rstrip(".")
        return f"{fix}: {about}" if about else fix
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
