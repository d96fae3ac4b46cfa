"""Project files parsed with the line number of every key (YAML and JSON alike)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rslp import formats
from rslp.checks.diagnostics import Diagnostic
from rslp.plugins import key_str

KeyPath = tuple[str | int, ...]

__all__ = ["Document", "KeyPath", "key_str", "load_document"]


@dataclass
class Document:
    """A parsed file and where each key starts.

    Attributes:
        path: the file.
        data: the parsed content (None when it did not parse).
        lines: key path -> 1-based line.
        role: for a section of ``olmoearth_run.yaml`` seen in a seed role (see
            :mod:`rslp.formats`), that role: ``data`` and ``lines`` use the seed's keys and
            diagnostics name the keys as written in the file.
        prefix: where ``data`` sits in the file (a platform request body's
            ``geometry``): diagnostics name the keys as written.
    """

    path: Path
    data: Any = None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    role: str | None = None
    prefix: KeyPath = ()

    def section(self, role: str) -> Document:
        """This ``olmoearth_run.yaml`` document's section that plays ``role``."""
        return Document(
            self.path,
            formats.section(self.data, role),
            formats.lines_of_section(self.lines, role),
            role,
        )

    def line(self, key: KeyPath) -> int | None:
        """The line of ``key``, or of its nearest parent that has one."""
        k = (*self.prefix, *key)
        while k:
            if k in self.lines:
                return self.lines[k]
            k = k[:-1]
        return self.lines.get((), None)

    def diag(
        self,
        message: str,
        key: KeyPath = (),
        hint: str | None = None,
        rule: str = "schema",
        severity: str = "error",
    ) -> Diagnostic:
        """A diagnostic located at ``key`` of this document."""
        shown = formats.real_key(self.role, tuple(key)) if self.role else tuple(key)
        shown = (*self.prefix, *shown)
        return Diagnostic(
            self.path,
            message,
            key_str(shown) or None,
            self.line(key),
            hint=hint,
            rule=rule,
            severity=severity,
        )


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            lines[(*path, key)] = k.start_mark.line + 1
            _walk(v, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            lines[(*path, i)] = v.start_mark.line + 1
            _walk(v, (*path, i), lines)


def load_document(path: Path) -> tuple[Document, list[Diagnostic]]:
    """Parse a YAML or JSON file with key line numbers; syntax errors become diagnostics."""
    doc = Document(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return doc, [Diagnostic(path, "file is missing", rule="files")]
    except UnicodeDecodeError:
        return doc, [Diagnostic(path, "file is not UTF-8 text", rule="syntax")]
    except OSError as e:  # a directory, no permission
        return doc, [Diagnostic(path, f"cannot read the file: {e.strerror}", rule="files")]
    if path.suffix in (".json", ".geojson"):
        try:
            doc.data = json.loads(text)
        except json.JSONDecodeError as e:
            return doc, [Diagnostic(path, f"not valid JSON: {e.msg}", line=e.lineno, rule="syntax")]
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            return doc, [Diagnostic(path, f"not valid JSON: {e}", rule="syntax")]
    else:
        try:
            parsed = yaml.safe_load(text)
            doc.data = {} if parsed is None else parsed
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(e, "problem", None) or str(e)
            return doc, [Diagnostic(path, f"not valid YAML: {problem}", line=line, rule="syntax")]
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            return doc, [Diagnostic(path, f"not valid YAML: {e}", rule="syntax")]
    try:
        node = yaml.compose(text)
        if node is not None:
            _walk(node, (), doc.lines)
    except yaml.YAMLError:
        pass  # valid JSON that YAML 1.1 cannot read: no line numbers
    return doc, []
