"""The scratch directory: everything a step needs is on disk here.

Layout::

    scratch/
      manifest.json     input hashes, partitions, per-partition step states (compacted)
      journal.jsonl     step records since the last compaction, one JSON line each
      plan/             the partition step's output: index.json, windows/<id>.jsonl
      inputs/           the configs and request as used (copied, hashed)
      dataset/          the rslearn dataset root (config.json, windows/<partition>/...)
      partitions/<id>/  postprocess outputs per partition (windows/ and the mosaic)
      results/          dataset-stage outputs
      logs/
      tmp/              TMPDIR for rslearn/Lightning, emptied after each step

All writes go to a temporary name first and are renamed into place, except the journal,
which is appended to: the manifest is ``manifest.json`` with the journal's records applied
in order (:meth:`Scratch.read_manifest`). Recording a step appends one line, so its cost
does not grow with the run; the journal is compacted into ``manifest.json`` when it
outgrows it (and at the end of every run), so reading stays linear in the manifest. A
record is replayed idempotently, so a compaction cut short by a crash loses nothing.
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
from typing import TYPE_CHECKING, Any

from rslp.bucket import Bucket, is_url, node_base
from rslp.fsutil import atomic_path, sha256_file, write_json_atomic
from rslp.runner.journal import BucketJournal, apply, empty_manifest, parse_lines

if TYPE_CHECKING:
    from rslp.runner.lock import RunLock


class Scratch:
    """Paths and small helpers for one scratch directory.

    Args:
        root: the scratch directory (created if missing); for a scratch in a bucket, the
            node-local working copy.
        remote: the bucket holding the scratch (None: ``root`` is the scratch).
    """

    def __init__(self, root: Path, remote: Bucket | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.remote = remote
        self._journal_store = BucketJournal(remote) if remote is not None else None

    @classmethod
    def open(cls, location: str | Path) -> Scratch:
        """A scratch directory, or a scratch in a bucket for a URL (``s3://b/prefix``).

        Raises:
            BucketError: an unsupported URL (nothing is contacted yet).
        """
        if is_url(location):
            bucket = Bucket(str(location))
            return cls(node_dir(bucket.url), bucket)
        return cls(Path(location))

    @property
    def location(self) -> str:
        """Where the scratch is: its URL, or its directory."""
        return self.remote.url if self.remote is not None else str(self.root)

    def where(self, path: Path) -> str:
        """Where users find a file of the scratch: its URL in the bucket, or its path."""
        if self.remote is None:
            return str(path)
        return self.remote.uri(path.resolve().relative_to(self.root).as_posix())

    def _rel(self, path: Path) -> str:
        rel = path.resolve().relative_to(self.root).as_posix()
        return "" if rel == "." else rel  # the root itself: the bucket prefix

    def check_access(self) -> None:
        """Fail at once when a bucket refuses a write (no-op on local disk)."""
        if self.remote is not None:
            self.remote.check_writable()

    def publish(self, path: Path) -> None:
        """Put a file or a directory of the working copy into the bucket, whole.

        No-op on local disk. A directory goes with its marker last
        (:meth:`rslp.bucket.Bucket.push_tree`); a missing path deletes the object.
        """
        if self.remote is None:
            return
        rel = self._rel(path)
        if path.is_dir():
            self.remote.push_tree(path, rel)
        elif path.is_file():
            self.remote.write(rel, path.read_bytes())
        else:
            self.remote.delete([rel])

    def fetch(self, path: Path) -> bool:
        """Bring a directory of the bucket into the working copy (its last complete push).

        Returns:
            False when the bucket holds no complete push of it (always True on local disk).
        """
        if self.remote is None:
            return True
        return self.remote.pull_tree(self._rel(path), path)

    def fetch_files(self, paths: list[Path]) -> None:
        """Make these files of the working copy match the bucket (absent there: removed)."""
        if self.remote is None:
            return
        got = self.remote.read_many([self._rel(p) for p in paths])
        for p in paths:
            data = got[self._rel(p)]
            if data is None:
                p.unlink(missing_ok=True)
            elif not p.is_file() or p.read_bytes() != data:
                with atomic_path(p) as tmp:
                    tmp.write_bytes(data)

    def exists(self, path: Path) -> bool:
        """Whether a file of the scratch exists (in the bucket, when there is one)."""
        if self.remote is None:
            return path.exists()
        return bool(self.remote.listing(self._rel(path.parent)).get(path.name))

    def write_text(self, path: Path, text: str) -> None:
        """Write a small file of the scratch (and its object in the bucket)."""
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        self.publish(path)

    def read_text(self, path: Path) -> str | None:
        """A small file of the scratch (from the bucket when there is one), or None."""
        if self.remote is not None:
            data = self.remote.read(self._rel(path))
            return None if data is None else data.decode()
        try:
            return path.read_text()
        except OSError:
            return None

    def has_manifest(self) -> bool:
        """Whether anything was recorded here."""
        if self._journal_store is not None:
            return self._journal_store.exists()
        return self.manifest_path.exists()

    def lock(self) -> RunLock:
        """The one-runner-per-scratch lock: ``flock`` on disk, a lease in a bucket."""
        from rslp.runner.lock import LeaseLock, ScratchLock

        if self.remote is None:
            return ScratchLock(self.root)
        lease = LeaseLock(self.remote)
        self.fence = lease.check  # once the lease is lost, no record lands
        return lease

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.root / "manifest.json"

    @property
    def journal_path(self) -> Path:
        """``journal.jsonl``: records not yet compacted into ``manifest.json``."""
        return self.root / JOURNAL

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
        """The manifest: ``manifest.json`` (or an empty one) with the journal applied."""
        if self._journal_store is not None:
            return self._journal_store.read()
        manifest = self._read_base()
        for record in self._journal():
            apply(manifest, record)
        return manifest

    def _read_base(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return empty_manifest()
        return dict(json.loads(self.manifest_path.read_text()))

    def _journal(self) -> list[dict[str, Any]]:
        """The journal's records; a last line cut short (a crash mid-write) is skipped."""
        try:
            return parse_lines(self.journal_path.read_text())
        except FileNotFoundError:
            return []

    def _append(self, records: list[dict[str, Any]]) -> None:
        """Append records to the journal (hold :meth:`manifest_lock`); compact when it is big."""
        if self._journal_store is not None:
            if self.fence is not None:
                self.fence()
            self._journal_store.append(records)
            return
        if not self.manifest_path.exists():  # workers look for it (engine.check_scratch)
            write_json_atomic(self.manifest_path, self._read_base())
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > max(COMPACT_MIN_BYTES, self.manifest_path.stat().st_size):
            self._compact()

    def _compact(self) -> None:
        """Fold the journal into ``manifest.json`` (hold :meth:`manifest_lock`)."""
        write_json_atomic(self.manifest_path, self.read_manifest())
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.journal_path, 0)

    def compact(self) -> None:
        """Fold the journal into ``manifest.json`` now (the end of a run does)."""
        if self._journal_store is not None:
            self._journal_store.compact()
            return
        if not self.journal_path.exists():
            return
        with self.manifest_lock():
            self._compact()

    # Set by a lease lock: raises once the lease is lost, so no record lands after.
    fence: Any = None

    def record_step(self, partition_id: str, step: str, state: str, **extra: Any) -> None:
        """Record a step state for a partition (one journal line)."""
        now = datetime.now(UTC).isoformat()
        fields = {"start": now} if state == "running" else {"end": now}
        self.record_steps([(partition_id, step, {**fields, "state": state, **extra})])

    def record_steps(self, updates: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Append many step records in one journal write.

        Args:
            updates: (partition id, step, fields); fields with ``state: running`` replace
                the step's record, others update it.
        """
        if not updates:
            return
        with self.manifest_lock():
            self._append([{"p": pid, "s": step, "f": fields} for pid, step, fields in updates])

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level manifest fields (one journal line)."""
        with self.manifest_lock():
            self._append([{"set": fields}])


JOURNAL = "journal.jsonl"
# The journal is compacted once it is larger than manifest.json (and this): each record's
# share of the compactions stays constant, however long the run.
COMPACT_MIN_BYTES = 1 << 20


def node_dir(url: str) -> Path:
    """The node-local working copy of the scratch at ``url``.

    ``$ESRUNNER_NODE_DIR/scratch/<digest of url>`` (default ``~/.cache/esrunner``): each
    node has its own; processes of one node share it.
    """
    import hashlib

    return node_base() / "scratch" / hashlib.sha256(url.encode()).hexdigest()[:16]
