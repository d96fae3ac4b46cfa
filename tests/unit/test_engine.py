"""The step engine's contract pieces: shared-scratch check, failure grouping, progress."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from rslp.errors import PartitionsFailedError, ProjectError, StepError
from rslp.project import ProjectFiles
from rslp.runner.engine import (
    RUN_ID_FILE,
    Event,
    PartitionJob,
    StepTask,
    ThrottledReporter,
    run_steps,
)
from rslp.runner.progress import Progress
from rslp.runner.recorder import Recorder
from rslp.runner.scratch import Scratch
from tests.conftest import DEMO


def job(scratch: Path, run_id: str) -> PartitionJob:
    files = ProjectFiles.from_dir(DEMO)
    return PartitionJob(files, scratch, run_id, "gamma", 15, (StepTask("dataset", "fp", False),))


def test_worker_that_cannot_see_the_manifest_fails_at_once_saying_so(tmp_path: Path) -> None:
    (rec,) = run_steps(job(tmp_path, "abc"), lambda events: None)
    assert rec.state == "failed"
    assert "cannot see the run's manifest" in str(rec.error) and "no manifest.json" in str(
        rec.error
    )
    Scratch(tmp_path).update_manifest(run_id="other")
    (tmp_path / RUN_ID_FILE).write_text("other\n")
    (rec,) = run_steps(job(tmp_path, "abc"), lambda events: None)
    assert "'other', not 'abc'" in str(rec.error) and "shared filesystem" in str(rec.error)
    assert not (tmp_path / "dataset").exists()  # nothing was built
    again = pickle.loads(pickle.dumps(rec.error))  # crosses process boundaries intact
    assert str(again) == str(rec.error)


def test_identical_failures_are_reported_once_with_their_partitions() -> None:
    same = [(p, StepError("inference", "bad <X object at 0x7f00ab>", p)) for p in "abc"]
    other = ("d", ProjectError("model.yaml", "no such class", "model.class_path"))
    err = PartitionsFailedError([*same, other])
    lines = str(err).splitlines()
    assert lines[0].startswith("4 partition(s) failed: [inference] bad <X object>")
    assert lines[0].endswith("(in 3 partition(s): a, b, c)")
    assert lines[1] == "model.yaml: model.class_path: no such class (in 1 partition(s): d)"
    assert not err.bad_input
    assert PartitionsFailedError([other]).bad_input
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_window_counts_are_batched_and_never_exceed_the_plan(tmp_path: Path) -> None:
    sent: list[list[Event]] = []
    rep = ThrottledReporter(sent.append, interval=3600)
    rep.windows("p", "inference", 2)  # first call sends (nothing sent before)
    for _ in range(5):
        rep.windows("p", "inference", 3)
    assert sum(e.count for b in sent for e in b) == 2  # the rest waits for the interval
    rep.flush()
    assert sum(e.count for b in sent for e in b) == 17
    lines: list[str] = []

    class Stream:
        def write(self, s: str) -> None:
            lines.append(s)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    progress = Progress(Stream(), bars=False)  # type: ignore[arg-type]
    progress.start("inference", 10)
    rec = Recorder(Scratch(tmp_path), progress, {"p": 10}, ("inference",), flush_interval=3600)
    for batch in sent:
        rec.events(batch)
    rec.close()
    assert lines[-1].startswith("[inference] 10/10 windows")


def test_a_worker_handed_another_gpu_builds_its_model_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rslp.runner.context import RunContext
    from rslp.runner.inference import _predictor_key
    from tests.conftest import DEMO

    ctx = RunContext(files=ProjectFiles.from_dir(DEMO), scratch=Scratch(tmp_path / "s"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    first = _predictor_key(ctx)
    assert _predictor_key(ctx) == first
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert _predictor_key(ctx) != first


def test_progress_moves_within_a_window_predicted_patch_by_patch() -> None:
    import io
    from types import SimpleNamespace

    from rslp.runner.window_counter import WindowCounter

    got: list[float] = []
    counter = WindowCounter()
    counter.on_windows = got.append
    crops = [SimpleNamespace(crop_idx=i, num_crops_in_window=4) for i in range(2)]
    counter.on_predict_batch_end(None, None, None, (None, None, crops), 0)
    assert got == [0.5]  # two of a window's four patches
    stream = io.StringIO()
    progress = Progress(stream, bars=False)
    progress.start("inference", 10)
    progress.advance("inference", 2.5, "p (running)")
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("[inference] 2.5/10 windows (") and ", ETA " in line, line
    progress.advance("inference", 7.5, "p done")
    assert stream.getvalue().splitlines()[-1].startswith("[inference] 10/10 windows (")
    assert "ETA" not in stream.getvalue().splitlines()[-1]
