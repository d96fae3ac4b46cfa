"""The scratch directory: everything a step needs is on disk here.

Layout::

    scratch/
      manifest.json     input hashes, partitions, per-partition step states
      plan/             the partition step's output: index.json, windows/<id>.jsonl
      inputs/           the configs and request as used (copied, hashed)
      dataset/          the rslearn dataset root (config.json, windows/<partition>/...)
      partitions/<id>/  postprocess outputs per partition (windows/ and the mosaic)
      results/          dataset-stage outputs
      logs/
      tmp/              TMPDIR for rslearn/Lightning, emptied after each step

All writes go to a temporary name first and are renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rslp.fsutil import atomic_path, sha256_file, write_json_atomic


class Scratch:
    """Paths and small helpers for one scratch directory.

    Args:
        root: the scratch directory (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.root / "manifest.json"

    @property
    def plan_dir(self) -> Path:
        """``plan/``: partitions (``index.json``) and their windows (``windows/*.jsonl``)."""
        return self.root / "plan"

    @property
    def inputs(self) -> Path:
        """Copies of the inputs as used."""
        return self.root / "inputs"

    @property
    def dataset(self) -> Path:
        """The rslearn dataset root."""
        return self.root / "dataset"

    @property
    def results(self) -> Path:
        """Dataset-stage outputs."""
        return self.root / "results"

    @property
    def logs(self) -> Path:
        """Logs."""
        return self.root / "logs"

    def partition_dir(self, partition_id: str) -> Path:
        """Postprocess outputs of one partition."""
        return self.root / "partitions" / partition_id

    @contextlib.contextmanager
    def tmpdir(self) -> Iterator[Path]:
        """A private TMPDIR for a step, removed afterwards (rslearn leaves temp files)."""
        base = self.root / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        d = Path(tempfile.mkdtemp(dir=base))
        old_env, old_mod = os.environ.get("TMPDIR"), tempfile.tempdir
        os.environ["TMPDIR"] = str(d)
        tempfile.tempdir = str(d)
        try:
            yield d
        finally:
            tempfile.tempdir = old_mod
            if old_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old_env
            shutil.rmtree(d, ignore_errors=True)

    def snapshot_inputs(self, files: dict[str, Path | None]) -> dict[str, str]:
        """Copy the inputs into ``inputs/`` and return their hashes.

        Args:
            files: name in ``inputs/`` -> source path (None entries are skipped).

        Returns:
            name -> SHA-256 of the file.
        """
        hashes: dict[str, str] = {}
        for name, src in files.items():
            if src is None:
                continue
            digest = sha256_file(src)
            hashes[name] = digest
            dst = self.inputs / name
            if dst.exists() and sha256_file(dst) == digest:
                continue
            if name.endswith(".ckpt"):
                continue  # hashed, not copied: weights can be large
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        return hashes

    @contextlib.contextmanager
    def manifest_lock(self) -> Iterator[None]:
        """Serialise manifest read-modify-write cycles across worker processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".manifest.lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or an empty one."""
        if not self.manifest_path.exists():
            return {"version": 1, "inputs": {}, "partitions": {}}
        return dict(json.loads(self.manifest_path.read_text()))

    def record_step(self, partition_id: str, step: str, state: str, **extra: Any) -> None:
        """Record a step state for a partition in the manifest (atomically)."""
        with self.manifest_lock():
            manifest = self.read_manifest()
            entry = manifest.setdefault("partitions", {}).setdefault(partition_id, {})
            now = datetime.now(UTC).isoformat()
            rec = entry.setdefault(step, {})
            if state == "running":
                rec.clear()
                rec["start"] = now
            else:
                rec["end"] = now
            rec["state"] = state
            rec.update(extra)
            write_json_atomic(self.manifest_path, manifest)

    def record_steps(self, updates: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Apply many step records in one atomic manifest write.

        Args:
            updates: (partition id, step, fields); fields with ``state: running`` replace
                the step's record, others update it.
        """
        if not updates:
            return
        with self.manifest_lock():
            manifest = self.read_manifest()
            parts = manifest.setdefault("partitions", {})
            for pid, step, fields in updates:
                rec = parts.setdefault(pid, {}).setdefault(step, {})
                if fields.get("state") == "running":
                    rec.clear()
                rec.update(fields)
            write_json_atomic(self.manifest_path, manifest)

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level manifest fields atomically."""
        with self.manifest_lock():
            manifest = self.read_manifest()
            manifest.update(fields)
            write_json_atomic(self.manifest_path, manifest)
