"""The manifest journal: appended records, replayed in order, compacted without loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rslp.fsutil import write_json_atomic
from rslp.runner import scratch as scratch_mod
from rslp.runner.scratch import Scratch


def test_records_append_and_replay_to_the_same_state(tmp_path: Path) -> None:
    s = Scratch(tmp_path)
    s.update_manifest(inputs={"model.yaml": "abc"}, run_id="r1")
    assert s.manifest_path.is_file()  # workers look for it before any compaction
    s.record_step("p1", "dataset", "running", worker="h:1")
    s.record_step("p1", "dataset", "done", fingerprint="f1", result={"windows": 2})
    s.record_steps([("p2", "dataset", {"state": "failed", "error": "boom"})])
    s.record_step("p1", "inference", "running", worker="h:2")
    lines = s.journal_path.read_text().splitlines()
    assert len(lines) == 5  # one line per record (a batch is one write)
    m = s.read_manifest()
    assert m["run_id"] == "r1" and m["inputs"] == {"model.yaml": "abc"}
    p1 = m["partitions"]["p1"]
    assert p1["dataset"]["state"] == "done" and p1["dataset"]["worker"] == "h:1"
    assert p1["dataset"]["result"] == {"windows": 2} and "start" in p1["dataset"]
    assert p1["inference"]["state"] == "running"
    assert m["partitions"]["p2"]["dataset"]["error"] == "boom"
    # a rerun of a step replaces its record
    s.record_step("p1", "dataset", "running", worker="h:3")
    assert "result" not in s.read_manifest()["partitions"]["p1"]["dataset"]

    before = s.read_manifest()
    s.compact()
    assert s.journal_path.stat().st_size == 0
    assert json.loads(s.manifest_path.read_text()) == before == s.read_manifest()


def test_a_torn_last_line_and_a_cut_short_compaction_lose_nothing(tmp_path: Path) -> None:
    s = Scratch(tmp_path)
    for i in range(5):
        s.record_step(f"p{i}", "dataset", "running")
        s.record_step(f"p{i}", "dataset", "done", fingerprint=str(i))
    state = s.read_manifest()
    # a crash mid-append leaves a line without its newline: it is skipped
    with s.journal_path.open("a") as f:
        f.write('{"p": "p9", "s": "dataset", "f": {"sta')
    assert s.read_manifest() == state
    # a crash after compaction wrote manifest.json but before the journal was emptied:
    # replaying the journal on top of it gives the same state
    write_json_atomic(s.manifest_path, state)
    assert s.read_manifest() == state


def test_the_journal_compacts_once_larger_than_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scratch_mod, "COMPACT_MIN_BYTES", 2000)
    s = Scratch(tmp_path)
    for i in range(200):
        s.record_step(f"p{i}", "dataset", "done", fingerprint="x" * 16)
    journal = s.journal_path.stat().st_size
    assert journal <= max(2000, s.manifest_path.stat().st_size) + 200
    assert len(s.read_manifest()["partitions"]) == 200
    assert len(json.loads(s.manifest_path.read_text())["partitions"]) > 100
