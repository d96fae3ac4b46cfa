"""A passing import check, remembered on this node.

The preflight's second pass (:data:`rslp.checks.rules.IMPORTING_RULES`) imports every
class a project names and binds its arguments: seconds, when a model's classes import
torch and Lightning. Its verdict follows from what that pass reads and from the code it
imports, so a pass is remembered under a key made of both, in this node's cache
(``$ESRUNNER_NODE_DIR/checked/<key>.json``, holding the pass's warnings): the next run of
the same project on this node (another request, another step in a fresh process) skips
the imports, and a driver whose workers run the model never imports it.

The key covers every class site (file, key path, class path, arguments, and whether the
first pass reported it), the source file each class's module is found in (size and
modification time, found without importing it), every installed distribution's name and
version, ``sys.path``, the Python version and this package's own sources. Only passes are
remembered; deleting the directory forgets them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from rslp.bucket import node_base
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs
from rslp.checks.rules.classes import class_sites
from rslp.fsutil import atomic_path
from rslp.plugins import module_origin, resolve_class_path

logger = logging.getLogger(__name__)
VERSION = "1"
PACKAGE = Path(__file__).resolve().parents[1]  # rslp/


def _stat(path: Path | str | None) -> list[object]:
    if path is None:
        return [None]
    try:
        st = Path(path).stat()
    except OSError:
        return [str(path), None]
    return [str(path), st.st_size, st.st_mtime_ns]


def _distributions() -> list[tuple[str, str]]:
    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        found.add((str(name or "?").lower(), str(dist.version)))
    return sorted(found)


def _own_sources() -> list[list[object]]:
    return [[str(p.relative_to(PACKAGE)), *_stat(p)[1:]] for p in sorted(PACKAGE.rglob("*.py"))]


def verdict_key(project: ProjectDocs) -> str:
    """The key of what the import pass would read and import for ``project`` (hex)."""
    reported = {(d.file, d.key) for d in project.found if d.rule == "class_path"}
    sites = []
    for site in class_sites(project):
        module = resolve_class_path(site.class_path).rpartition(".")[0]
        sites.append(
            [
                str(site.doc.path),
                list(site.key),
                site.class_path,
                site.args,
                (site.doc.path, site.class_key) in reported,
                _stat(module_origin(module)),
            ]
        )
    parts = {
        "version": VERSION,
        "python": [sys.version, sys.executable, sys.path],
        "sites": sites,
        "distributions": _distributions(),
        "rslp": _own_sources(),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _path(key: str) -> Path:
    return node_base() / "checked" / f"{key}.json"


def remembered(key: str) -> list[Diagnostic] | None:
    """The warnings of a remembered pass under ``key``; None when none is remembered."""
    try:
        rows = json.loads(_path(key).read_text())
        return [Diagnostic(**{**row, "file": Path(row["file"])}) for row in rows]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def remember(key: str, warnings: list[Diagnostic]) -> None:
    """Remember a pass under ``key``, with its warnings (an unwritable cache: not at all)."""
    rows = [{**asdict(d), "file": str(d.file)} for d in warnings]
    try:
        path = _path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(rows))
    except OSError as e:
        logger.debug("the import check's pass is not remembered: %s", e)
