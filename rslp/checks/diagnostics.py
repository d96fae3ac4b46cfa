"""Validation findings and how they are printed (text, JSON, GitHub annotations)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a project.

    Attributes:
        file: the file at fault.
        message: what is wrong.
        key: the key path inside the file (``layers.image.band_sets[0].bands``), if any.
        line: 1-based line of that key, when known.
        hint: how to fix it, if known.
        rule: which check found it (``schema``, ``class_path``, ...).
        severity: ``error``, ``warning``, or ``notice`` (could not be checked here).
    """

    file: Path
    message: str
    key: str | None = None
    line: int | None = None
    hint: str | None = None
    rule: str = "schema"
    severity: str = "error"

    def order(self) -> tuple[str, int, str, str]:
        """Sort key: file, then line, key and message."""
        return (str(self.file), self.line or 0, self.key or "", self.message)

    def text(self, root: Path | None = None) -> str:
        """``file:line: key: message (hint: ...)``."""
        f = _rel(self.file, root)
        where = f"{f}:{self.line}" if self.line else f
        level = "" if self.severity == "error" else f"{self.severity}: "
        out = f"{where}: {level}" + (f"{self.key}: " if self.key else "") + self.message
        return out + (f" (hint: {self.hint})" if self.hint else "")

    def github(self, root: Path | None = None) -> str:
        """A GitHub Actions ``::error`` workflow command."""
        f = _rel(self.file, root)
        loc = f"file={f}" + (f",line={self.line}" if self.line else "")
        msg = (f"{self.key}: " if self.key else "") + self.message
        if self.hint:
            msg += f" (hint: {self.hint})"
        msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"::{self.severity} {loc},title=esbuild {self.rule}::{msg}"


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def render(diags: list[Diagnostic], fmt: str, root: Path | None = None) -> str:
    """All diagnostics in ``fmt`` (``text``, ``json`` or ``github``)."""
    if fmt == "json":
        return json.dumps(
            [{**asdict(d), "file": _rel(d.file, root)} for d in diags], indent=1, sort_keys=True
        )
    if fmt == "github":
        return "\n".join(d.github(root) for d in diags)
    return "\n".join(d.text(root) for d in diags)
