"""The manifest of a scratch in a bucket: ``manifest.json`` plus one object per record batch.

Layout under the scratch URL::

    manifest.json              compacted manifest; ``journal_upto`` is the last batch in it
    journal/000000000042.jsonl one object per appended batch of records (JSON lines)

Only the run's driver appends (it holds the lease lock), numbering batches after the
highest it finds (listing and ``journal_upto``), so replay order is append order. A
compaction writes ``manifest.json`` with ``journal_upto`` first and deletes the folded
batches after: a listing that still shows a deleted batch, or a compaction cut short,
changes nothing, because batches at or below ``journal_upto`` are never replayed.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from rslp.bucket import Bucket

MANIFEST = "manifest.json"
JOURNAL_DIR = "journal"
# Batches kept before a compaction: bounds a reader's requests, whatever the run's length.
COMPACT_BATCHES = 200


def empty_manifest() -> dict[str, Any]:
    """A manifest before anything ran."""
    return {"version": 1, "inputs": {}, "partitions": {}}


def apply(manifest: dict[str, Any], record: dict[str, Any]) -> None:
    """Apply one journal record to a manifest (idempotent when replayed in order)."""
    if "set" in record:
        manifest.update(record["set"])
        return
    fields = record["f"]
    rec = (
        manifest.setdefault("partitions", {})
        .setdefault(record["p"], {})
        .setdefault(record["s"], {})
    )
    if fields.get("state") == "running":
        rec.clear()
    rec.update(fields)


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The records of JSON lines; a last line cut short (a crash mid-write) is skipped."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class BucketJournal:
    """Read, append to and compact the manifest of a scratch in a bucket.

    Args:
        bucket: the scratch URL's bucket and prefix.
    """

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self._next: int | None = None
        self._pending = 0
        self._lock = threading.Lock()

    def exists(self) -> bool:
        """Whether anything was recorded (a manifest or a batch)."""
        return self.bucket.read(MANIFEST) is not None or bool(self._batches())

    def _batches(self) -> list[int]:
        names = self.bucket.files(JOURNAL_DIR)
        return sorted(int(n.split(".")[0]) for n in names if n.endswith(".jsonl") and "/" not in n)

    def _base(self) -> dict[str, Any]:
        data = self.bucket.read(MANIFEST)
        return empty_manifest() if data is None else dict(json.loads(data))

    def read(self) -> dict[str, Any]:
        """The manifest with every batch after ``journal_upto`` applied in order."""
        for _ in range(5):  # a compaction between our reads deletes batches: read again
            manifest = self._base()
            upto = int(manifest.get("journal_upto", -1))
            seqs = [s for s in self._batches() if s > upto]
            got = self.bucket.read_many([_name(s) for s in seqs])
            if any(v is None for v in got.values()):
                continue
            for s in seqs:
                for record in parse_lines((got[_name(s)] or b"").decode()):
                    apply(manifest, record)
            if seqs:
                manifest["journal_upto"] = seqs[-1]
            return manifest
        raise RuntimeError(f"{self.bucket.url}: the journal kept changing while read")

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write the records as the next batch (one object); compact when there are many."""
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        with self._lock:
            if self._next is None:
                seqs = self._batches()
                upto = int(self._base().get("journal_upto", -1))
                self._next = max([upto, *seqs]) + 1
                self._pending = len(seqs)
            self.bucket.write(_name(self._next), data)
            self._next += 1
            self._pending += 1
            if self._pending > COMPACT_BATCHES:
                self._compact()

    def compact(self) -> None:
        """Fold the batches into ``manifest.json`` and delete them."""
        with self._lock:
            self._compact()

    def _compact(self) -> None:
        if not self._batches():  # nothing to fold (and nothing written for nothing)
            self._pending = 0
            return
        manifest = self.read()
        upto = manifest.get("journal_upto")
        self.bucket.write(
            MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        )
        if upto is not None:
            self.bucket.delete([_name(s) for s in self._batches() if s <= int(upto)])
        self._pending = 0


def _name(seq: int) -> str:
    return f"{JOURNAL_DIR}/{seq:012d}.jsonl"
