"""Directories the process must write to: checked before any work, refusals a person can act on.

A container started with ``-v $PWD/scratch:/work/scratch`` runs as the image's user, and
the mounted directory belongs to whoever made it: the first write fails with ``Permission
denied``. A read-only mount and a full disk fail likewise. :func:`check_writable` tries a
write before anything else (and leaves nothing behind); :func:`storage_error` turns such an
``OSError`` met later (a disk that fills mid-run) into the same kind of message: the path,
the user the process runs as, the directory's owner, and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from rslp.errors import RunnerError

# errno -> what it means for a person
STORAGE_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "it is on a read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
}


class StorageError(RunnerError):
    """A directory the run needs cannot be written (the user's setup, not a bug).

    Args:
        path: the file or directory that could not be written.
        message: the whole line: what failed, as whom, and the fix.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def _owner(path: Path) -> tuple[Path, str]:
    """The nearest existing directory at or above ``path``, and who owns it (for messages)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = p.stat()
    except OSError:
        return p, "unknown"
    return p, f"uid {st.st_uid} (gid {st.st_gid}), mode {st.st_mode & 0o7777:o}"


def _fix(code: int, where: Path) -> str:
    if code in (errno.EACCES, errno.EPERM):
        uid, gid = os.getuid(), os.getgid()
        return (
            f'run as the directory\'s owner (docker run --user "$(id -u):$(id -g)" ...), '
            f"or let uid {uid} (gid {gid}) write {where}"
        )
    if code == errno.EROFS:
        return f"mount {where} read-write (no ':ro'), or give --scratch a writable directory"
    return f"free space where {where} is (or give --scratch a directory on another disk)"


def storage_error(err: OSError, what: str = "") -> StorageError | None:
    """The person's version of ``err`` when it is about writing a place; None otherwise.

    Args:
        err: the error (``PermissionError``, ``OSError(EROFS)``, ``OSError(ENOSPC)``...).
        what: what the place is for (``scratch``), said first.
    """
    if err.errno not in STORAGE_ERRNOS:
        return None
    if not err.filename:  # a write() that failed: which file is not known here
        return StorageError(
            Path("."),
            f"cannot write: {STORAGE_ERRNOS[err.errno]} (running as uid {os.getuid()}) "
            "while writing the scratch directory, its logs or temporary files "
            f"(hint: {_fix(err.errno, Path('the scratch directory'))})",
        )
    path = Path(os.fsdecode(err.filename))
    where, owner = _owner(path)
    uid, gid = os.getuid(), os.getgid()
    who = f"running as uid {uid} (gid {gid})"
    if err.errno in (errno.EACCES, errno.EPERM):
        who += f"; {where} is owned by {owner}"
    label = f"{what} " if what else ""
    return StorageError(
        path,
        f"cannot write {label}{path}: {STORAGE_ERRNOS[err.errno]} ({who}) "
        f"(hint: {_fix(err.errno, where)})",
    )


def check_writable(directory: Path, what: str = "scratch") -> None:
    """Make ``directory`` if needed and write (then remove) a probe file in it.

    Raises:
        StorageError: it cannot be made or written; nothing is left behind (directories
            it made for the probe are removed again).
    """
    made = [p for p in (directory, *directory.parents) if not p.exists()]
    probe = directory / f".esrunner-write-test-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"esrunner")
    except OSError as e:
        with contextlib.suppress(OSError):
            probe.unlink()
        for p in made:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
        if not e.filename or Path(os.fsdecode(e.filename)) == probe:  # name the directory
            e = OSError(e.errno, e.strerror, str(directory))
        err = storage_error(e, what)
        if err is None:
            raise
        raise err from None
    with contextlib.suppress(OSError):
        probe.unlink()
