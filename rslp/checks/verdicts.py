"""A passing import check, remembered on this node.

The preflight's second pass (:data:`rslp.checks.rules.IMPORTING_RULES`) imports every
class a project names and binds its arguments: seconds, when a model's classes import
torch and Lightning. Its verdict follows from what that pass reads and from the code it
imports, so a pass is remembered in this node's cache
(``$ESRUNNER_NODE_DIR/checked/<key>.json``): the next run of the same project on this node
(another request, another step in a fresh process) skips the imports, and a driver whose
workers run the model never imports it.

What a remembered pass depends on, and is checked against before it is trusted:

- the key: every class site (file, key path, class path, arguments, and whether the first
  pass reported it), the source file each class's module is found in, every installed
  distribution (the names of the ``*.dist-info`` directories on ``sys.path``: name and
  version), ``sys.path``, the Python version and this package's own sources;
- the files of every module the pass imported from outside the standard library and
  ``site-packages`` (plugins on ``PYTHONPATH``, editable installs, a project's own code),
  stored with the verdict and compared (size, modification time) before it is used.

Only passes are remembered, and only by a process that had not imported any of the
project's classes before the pass (a long-lived process may hold code older than the files
on disk). What stays out: a package in ``site-packages`` edited in place without a new
version, and the system libraries an extension loads. Deleting the directory forgets every
verdict.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import sysconfig
from pathlib import Path

from rslp.bucket import node_base
from rslp.checks.project import ProjectDocs
from rslp.checks.rules.classes import class_sites
from rslp.fsutil import atomic_path, signature
from rslp.plugins import module_origin

logger = logging.getLogger(__name__)
VERSION = "2"
PACKAGE = Path(__file__).resolve().parents[1]  # rslp/
Stat = list[object]


def _stat(path: Path | str | None) -> Stat:
    if path is None:
        return [None]
    try:
        return [str(path), *signature(path)]
    except OSError:
        return [str(path), None]


def _distributions() -> list[str]:
    """The installed distributions' metadata directories (name and version), on sys.path."""
    found: set[str] = set()
    for entry in sys.path:
        try:
            names = (p.name for p in Path(entry or ".").iterdir())
            found.update(n for n in names if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
    return sorted(found)


def _own_sources() -> list[Stat]:
    return [[str(p.relative_to(PACKAGE)), *_stat(p)[1:]] for p in sorted(PACKAGE.rglob("*.py"))]


def _site_modules(project: ProjectDocs) -> set[str]:
    """The modules of the project's classes but this package's own."""
    return {site.module for site in class_sites(project) if not site.own}


def verdict_key(project: ProjectDocs) -> str | None:
    """The key of what the import pass reads and imports for ``project`` (hex).

    Returns:
        the key, or None when it cannot be made here (the pass then runs, unremembered).
    """
    try:
        reported = {(d.file, d.key) for d in project.found if d.rule == "class_path"}
        sites = [
            [
                str(site.doc.path),
                list(site.key),
                site.class_path,
                site.args,
                (site.doc.path, site.class_key) in reported,
                _stat(module_origin(site.module)),
            ]
            for site in class_sites(project)
        ]
        parts = {
            "version": VERSION,
            "python": [sys.version, sys.executable, sys.path],
            "sites": sites,
            "distributions": _distributions(),
            "rslp": _own_sources(),
        }
        text = json.dumps(parts, sort_keys=True, default=str)
    except Exception as e:  # a key that cannot be made only costs the imports
        logger.debug("the import check's key cannot be made: %s", e)
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _path(key: str) -> Path:
    return node_base() / "checked" / f"{key}.json"


def remembered(key: str | None) -> bool:
    """Whether a pass is remembered under ``key`` and the files it imported are unchanged."""
    if key is None:
        return False
    try:
        files = json.loads(_path(key).read_text())["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return False
    return all(_stat(f[0]) == f for f in files)


class ImportPass:
    """What the import pass imports, watched so that a pass can be remembered.

    Use it around the checks: ``watch = ImportPass(project)`` before the first pass (the
    quick pass imports this package's strategies, and a plugin's), run the rules, then
    ``watch.remember(key)`` if they found no error.
    """

    _ROOTS = tuple(
        {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    )

    def __init__(self, project: ProjectDocs) -> None:
        self.project = project
        self.before = set(sys.modules)

    def _loaded_files(self) -> list[Stat]:
        out = []
        for name in sorted(set(sys.modules) - self.before):
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and not str(file).startswith(self._ROOTS):
                out.append(_stat(file))
        return out

    def remember(self, key: str | None) -> None:
        """Remember the pass under ``key``.

        Not at all without a key, when code was loaded before the pass, or when the cache
        cannot be written.
        """
        # Code this process loaded before may be older than the files on disk.
        if key is None or _site_modules(self.project) & self.before:
            return
        try:
            path = _path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"files": self._loaded_files()}))
        except OSError as e:
            logger.debug("the import check's pass is not remembered: %s", e)
