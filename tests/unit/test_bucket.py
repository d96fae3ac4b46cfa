"""The bucket floor (rslp/bucket.py) and the bucket journal, on a real S3 server (loopback)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rslp.bucket import MARKER, Bucket, BucketError
from rslp.runner import journal as journal_mod
from rslp.runner.scratch import Scratch
from tests.s3fault import S3Server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def test_urls_are_checked_before_anything_is_contacted() -> None:
    assert Bucket("s3://b/a/b/").url == "s3://b/a/b"
    assert Bucket("s3://b").uri("x/y") == "s3://b/x/y"
    with pytest.raises(BucketError, match="scheme http:// is not supported"):
        Bucket("http://b/x")
    with pytest.raises(BucketError, match="holds credentials") as err:
        Bucket("s3://AKID:topsecret@b/x")
    assert "topsecret" not in str(err.value)


def test_create_once_and_compare_and_swap(s3: S3Server) -> None:
    b = Bucket("s3://bucket/cas")
    assert b.create("lock", b"1") and not b.create("lock", b"2")
    got = b.read_tagged("lock")
    assert got is not None and got[0] == b"1"
    assert b.replace("lock", b"3", got[1])
    assert not b.replace("lock", b"4", got[1])  # stale ETag: refused
    assert b.read("lock") == b"3"
    b.delete(["lock"])
    assert b.read("lock") is None and b.read_tagged("lock") is None


def _tree(src: Path) -> Path:
    """``a.txt`` and ``sub/b.txt``."""
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    return src


def test_a_tree_is_complete_only_by_its_marker(s3: S3Server, tmp_path: Path) -> None:
    b = Bucket("s3://bucket/trees")
    src = _tree(tmp_path / "src")
    assert not b.pull_tree("t", tmp_path / "none")  # nothing pushed yet
    assert not (tmp_path / "none").exists()
    b.push_tree(src, "t")
    dst = tmp_path / "dst"
    assert b.pull_tree("t", dst)
    assert (dst / "sub" / "b.txt").read_text() == "b"
    # A second push drops what is gone locally; a reader with the old copy re-pulls.
    (src / "a.txt").unlink()
    (src / "c.txt").write_text("c")
    b.push_tree(src, "t")
    assert set(b.files("t")) == {"sub/b.txt", "c.txt", MARKER}
    assert b.pull_tree("t", dst)
    assert sorted(p.name for p in dst.iterdir()) == [MARKER, "c.txt", "sub"]
    # A push cut short (files written, marker not yet) is not taken for complete.
    b.delete([f"t/{MARKER}"])
    b.write("t/c.txt", b"half")
    assert not b.pull_tree("t", tmp_path / "other")
    assert (dst / "c.txt").read_text() == "c"  # the reader keeps the last complete copy


def test_a_push_sends_only_what_changed_since_the_bucket_copy(s3: S3Server, tmp_path: Path) -> None:
    b = Bucket("s3://bucket/incremental")
    src = _tree(tmp_path / "src")
    b.push_tree(src, "t")
    node = tmp_path / "node"  # another node: pulled files keep the pushed mtimes
    assert b.pull_tree("t", node)
    b.write("t/sub/b.txt", b"X")  # behind the marker's back: shows whether b.txt is re-sent
    (node / "a.txt").write_text("a2")
    b.push_tree(node, "t")
    assert b.read("t/a.txt") == b"a2"
    assert b.read("t/sub/b.txt") == b"X"  # unchanged since the pull: not sent again
    # a copy the bucket no longer holds (its marker is not the bucket's) sends everything
    b.push_tree(src, "t")
    assert b.read("t/sub/b.txt") == b"b" and b.read("t/a.txt") == b"a"


def test_bucket_journal_appends_objects_and_compacts(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "COMPACT_BATCHES", 5)
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "node"))
    s = Scratch.open("s3://bucket/journal-test")
    assert s.remote is not None and not s.has_manifest()
    for i in range(13):
        s.record_step(f"p{i}", "dataset", "done", fingerprint="f")
    s.update_manifest(run_id="r1")
    b = s.remote
    batches = sorted(b.files("journal"))
    assert 0 < len(batches) <= 6  # compacted twice on the way
    manifest = s.read_manifest()
    assert len(manifest["partitions"]) == 13 and manifest["run_id"] == "r1"
    # Another reader (another node) sees the same manifest.
    other = Scratch.open("s3://bucket/journal-test")
    assert other.read_manifest()["partitions"] == manifest["partitions"]
    s.compact()
    assert b.files("journal") == {}
    stored = json.loads(b.read("manifest.json") or b"{}")
    assert len(stored["partitions"]) == 13
    # A batch a listing still shows after compaction (or a compaction cut short before
    # its deletes) is never applied twice: batches up to journal_upto are folded.
    upto = stored["journal_upto"]
    b.write(f"journal/{upto:012d}.jsonl", b'{"set":{"run_id":"stale"}}\n')
    assert s.read_manifest()["run_id"] == "r1"
    # A new appender (a new driver) numbers after journal_upto, so its records apply.
    Scratch.open("s3://bucket/journal-test").update_manifest(run_id="r2")
    assert other.read_manifest()["run_id"] == "r2"
    # A torn last line (a crash mid-write cannot happen to one object, but a bad
    # writer could) is skipped, not fatal.
    b.write(f"journal/{upto + 5:012d}.jsonl", b'{"set":{"run_id":"r3"}}\n{"set":')
    assert other.read_manifest()["run_id"] == "r3"
