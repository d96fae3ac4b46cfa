"""Files written whole or not at all, and file hashes: the lowest floor of the package.

Everything that writes an output (postprocessors, the runner, esbuild) uses these, so a
reader never sees a half-written file or a half-built directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def signature(path: Path | str) -> list[int]:
    """A file's size and modification time (ns): what changes when the file is rewritten.

    Raises:
        OSError: the file cannot be stat'ed.
    """
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def fresh_dir(path: Path) -> Path:
    """An empty staging directory next to ``path``, to be renamed onto it when complete."""
    staging = path.with_name(f".{path.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish_dir(staging: Path, final: Path) -> None:
    """Replace directory ``final`` by ``staging`` with renames, never showing a mix."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def new_dir(final: Path) -> Iterator[Path]:
    """Build a new directory under a temporary name; renamed to ``final`` on success.

    Raises:
        FileExistsError: when ``final`` exists (nothing is replaced).
    """
    if final.exists():
        raise FileExistsError(final)
    staging = final.with_name(f".{final.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_project(src: Path, dst: Path, leave: set[str], leave_files: set[Path]) -> None:
    """Copy a project directory's entries into ``dst`` (an existing directory).

    Hidden entries, ``scratch/`` and the top-level names in ``leave`` are not copied, nor
    the files in ``leave_files`` (anywhere below ``src``); symlinks are copied as links.
    """
    for entry in sorted(src.iterdir()):
        if entry.name.startswith(".") or entry.name == "scratch" or entry.name in leave:
            continue
        if entry.is_dir():
            shutil.copytree(
                entry,
                dst / entry.name,
                symlinks=True,
                ignore=lambda d, names: [n for n in names if Path(d, n) in leave_files],
            )
        elif entry not in leave_files:
            shutil.copy2(entry, dst / entry.name)
