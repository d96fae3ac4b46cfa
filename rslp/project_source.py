"""A project directory in a bucket (``s3://bucket/projects/demo``), cached per node.

For a cluster by hand without a shared filesystem: the project's files and checkpoint
are read from the bucket into ``$ESRUNNER_NODE_DIR/projects/<digest>/``, where the
digest covers every object's name, size and ETag. A node downloads a version once; the
driver sends the digest with each partition, so a worker fetches exactly the version
the run started with (and fails, saying so, when the bucket's copy changed meanwhile).
In the model image the project is at ``/opt/project`` and none of this is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from rslp.bucket import Bucket, BucketError, node_base
from rslp.fsutil import write_json_atomic
from rslp.project import ProjectFiles

SOURCE_SUFFIX = ".source.json"


def _digest(listing: dict[str, tuple[int, str]]) -> str:
    text = "\n".join(f"{n}\t{size}\t{etag}" for n, (size, etag) in sorted(listing.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def fetch_project(url: str, digest: str | None = None) -> tuple[Path, str]:
    """This node's copy of the project at ``url``: (its directory, its digest).

    Args:
        url: the project's prefix in a bucket.
        digest: the version a run uses (None: the bucket's current one).

    Raises:
        BucketError: no files there, or (``digest`` given) the bucket's copy changed.
    """
    bucket = Bucket(url)
    listing = bucket.listing("")
    if not listing:
        raise BucketError(bucket.url, "reading the project", "no files under it")
    got = _digest(listing)
    if digest is not None and got != digest:
        raise BucketError(
            bucket.url,
            "reading the project",
            f"it changed during the run (version {got[:12]}, the run's {digest[:12]})",
            "rerun: the new version's configs are hashed again",
        )
    root = node_base() / "projects"
    local = root / got[:16]
    if not local.is_dir():
        staging = root / f".{got[:16]}.{id(listing)}.building"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            bucket.get_files(sorted(listing), staging)
            try:
                staging.rename(local)
            except OSError:  # another process of this node got it first
                if not local.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    write_json_atomic(root / f"{got[:16]}{SOURCE_SUFFIX}", {"url": bucket.url, "digest": got})
    return local, got


def source_of(project_dir: Path) -> tuple[str, str] | None:
    """(URL, digest) when ``project_dir`` is a node's copy of a project in a bucket."""
    meta = project_dir.parent / f"{project_dir.name}{SOURCE_SUFFIX}"
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return str(data["url"]), str(data["digest"])


def relocate(files: ProjectFiles, old_root: Path, new_root: Path) -> ProjectFiles:
    """The same files with paths under ``old_root`` moved under ``new_root``."""
    if old_root == new_root:
        return files
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(files):
        value = getattr(files, f.name)
        if isinstance(value, Path) and value.is_relative_to(old_root):
            changes[f.name] = new_root / value.relative_to(old_root)
    return dataclasses.replace(files, **changes)
