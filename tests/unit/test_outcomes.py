"""Window outcomes, the success-rate floor, and retries of transient data-source faults."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import yaml

from rslp.checks import check_project
from rslp.project import ProjectFiles
from rslp.runner.outcomes import (
    PartitionOutcome,
    Rejection,
    RunOutcome,
    WindowFloorError,
    collect,
    read_outcome,
    write_outcome,
)
from rslp.runner.pipeline import fingerprints, input_files
from rslp.runner.retry import (
    RetriesExhaustedError,
    RetryPolicy,
    call_with_retries,
    is_transient,
)
from rslp.runner.scratch import Scratch
from tests.conftest import DEMO


class _StatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


def _wrapped(inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as e:
            raise RuntimeError("data source failed") from e
    except RuntimeError as outer:
        return outer


def test_transient_faults_are_told_from_the_rest() -> None:
    import requests
    from botocore.exceptions import ClientError, EndpointConnectionError

    response = requests.Response()
    response.status_code = 503
    assert is_transient(requests.HTTPError(response=response))
    response.status_code = 404
    assert not is_transient(requests.HTTPError(response=response))
    slow = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"
    )
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Get"
    )
    assert is_transient(slow) and not is_transient(denied)
    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(_StatusError(429)) and not is_transient(_StatusError(400))
    # Wrapped by a data source, or only in words (GDAL's curl driver, s3fs's OSError).
    assert is_transient(_wrapped(_StatusError(502)))
    assert is_transient(OSError("'/vsis3/b/k.tif' HTTP response code: 503"))
    assert not is_transient(FileNotFoundError("s3://bucket/imagery/scene.tif"))
    assert not is_transient(ValueError("bad band name"))
    assert not is_transient(_wrapped(KeyError("B5")))


def test_retries_back_off_exponentially_and_give_up() -> None:
    calls: list[int] = []
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff=1.0, max_backoff=3.0)

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("Connection reset by peer")
        return "ok"

    assert call_with_retries(flaky, policy, "get", sleep=waits.append) == "ok"
    assert len(calls) == 3 and len(waits) == 2
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # doubled, half of it jitter

    waits.clear()

    def down() -> None:
        raise TimeoutError("timed out")

    with pytest.raises(RetriesExhaustedError, match=r"get failed after 4 attempt\(s\)"):
        call_with_retries(down, policy, "get", sleep=waits.append)
    assert len(waits) == 3 and max(waits) <= 3.0  # bounded by max_backoff

    def broken() -> None:
        calls.append(1)
        raise KeyError("B5")

    calls.clear()
    with pytest.raises(KeyError):  # not transient: at once, no retry
        call_with_retries(broken, policy, "get", sleep=waits.append)
    assert len(calls) == 1


def test_outcomes_round_trip_and_the_floor(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path / "scratch")
    write_outcome(
        scratch,
        PartitionOutcome("a", 10, [Rejection("w1", "image", "no_items", feature_ids=["f1"])]),
    )
    write_outcome(
        scratch,
        PartitionOutcome(
            "b", 10, [Rejection(f"w{i}", "image", "source_failed", "503 SlowDown") for i in (2, 3)]
        ),
    )
    assert read_outcome(scratch, "a").counts() == {"windows": 10, "ready": 9, "rejected": 1}
    assert read_outcome(scratch, "c") is None
    run = collect(scratch, {"a": 10, "b": 10, "c": 5})
    assert (run.planned, run.rejected, run.ready) == (25, 3, 22)
    assert run.rate == pytest.approx(0.88)
    assert run.below(0.9) and not run.below(0.88) and not run.below(0.0)
    assert "source_failed" not in run.dominant()  # in words
    assert "the data source failed after every retry (2 window(s)): 503 SlowDown" in (
        run.dominant()
    )
    # A partition counted again replaces what was counted for it.
    run.add(PartitionOutcome("b", 10, []))
    assert run.rejected == 1 and run.reasons == {("image", "no_items"): 1}
    err = WindowFloorError(run, 0.99, "--min-window-success-rate", tmp_path / "x.geojson", True)
    assert "window success rate 96.0% (24 of 25 windows ready)" in str(err)
    assert "below min_window_success_rate 0.99 (--min-window-success-rate)" in str(err)
    assert str(tmp_path / "x.geojson") in str(err)
    assert RunOutcome(planned=0).rate == 1.0 and not RunOutcome(planned=0).below(1.0)


def _demo(tmp_path: Path, extra: dict) -> Path:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    cfg = project / "partition_strategies.yaml"
    data = yaml.safe_load(cfg.read_text())
    data.update(extra)
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return project


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("min_window_success_rate", 1.5, "use a value from 0 to 1"),
        ("min_window_success_rate", -0.1, "use a value from 0 to 1"),
        ("retry_max_attempts", -1, "use a value from 0 to 100"),
        ("retry_backoff", -2, "use a value from 0 to 3600"),
    ],
)
def test_bad_dataset_build_values_name_file_key_and_fix(
    tmp_path: Path, key: str, value: float, fix: str
) -> None:
    project = _demo(tmp_path, {"dataset_build": {key: value}})
    errors = [d for d in check_project(project) if d.severity == "error"]
    assert len(errors) == 1, errors
    text = str(errors[0])
    assert "partition_strategies.yaml" in text and f"dataset_build.{key}" in text, text
    assert fix in text, text


def test_reference_format_reads_dataset_build_at_the_top_level(tmp_path: Path) -> None:
    from rslp.runner.context import RunContext
    from tests.conftest import reference_project

    run = {
        "partition_strategies": {
            "partition_request_geometry": yaml.safe_load(
                (DEMO / "partition_strategies.yaml").read_text()
            )["strategy_large"],
            "prepare_window_geometries": yaml.safe_load(
                (DEMO / "partition_strategies.yaml").read_text()
            )["strategy_small"],
        },
        "postprocessing_strategies": {
            "process_window": {"class_path": "rslp.common.postprocessing.raster.NoopRaster"},
            "process_partition": {"class_path": "rslp.common.postprocessing.raster.CombineGeotiff"},
            "process_dataset": {"class_path": "rslp.common.postprocessing.raster.CombineGeotiff"},
        },
        "inference_results_config": {"data_type": "RASTER"},
        "dataset_build": {"min_window_success_rate": 2},
    }
    project = reference_project(DEMO, tmp_path / "ref", run)
    errors = [str(d) for d in check_project(project) if d.severity == "error"]
    assert any(
        "olmoearth_run.yaml" in e and "dataset_build.min_window_success_rate" in e for e in errors
    ), errors
    run["dataset_build"] = {"min_window_success_rate": 0.25, "retry_max_attempts": 7}
    (project / "olmoearth_run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    files = ProjectFiles.from_dir(project)
    ctx = RunContext(files=files, scratch=Scratch(tmp_path / "s"))
    build = ctx.partition_config.dataset_build
    assert (build.min_window_success_rate, build.retry_max_attempts) == (0.25, 7)


def test_changing_dataset_build_reruns_nothing(tmp_path: Path) -> None:
    def fps(project: Path) -> dict[str, str]:
        scratch = Scratch(tmp_path / f"scratch-{project.name}")
        files = ProjectFiles.from_dir(project)
        return fingerprints(scratch.snapshot_inputs(input_files(files, scratch)))

    plain = fps(DEMO)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _demo(tmp_path / "a", {"dataset_build": {"min_window_success_rate": 0.5}})
    b = _demo(tmp_path / "b", {"dataset_build": {"retry_max_attempts": 9}})
    assert fps(a) == fps(b) == plain
    # Comments change nothing either; a real change still counts.
    (tmp_path / "c").mkdir()
    c = _demo(tmp_path / "c", {"projection": {"resolution": 20}})
    assert fps(c)["partition"] != plain["partition"]


def test_the_recorder_stops_new_partitions_once_the_floor_is_out_of_reach(
    tmp_path: Path,
) -> None:
    import io

    from rslp.runner.engine import StepRecord
    from rslp.runner.progress import Progress
    from rslp.runner.recorder import Recorder

    scratch = Scratch(tmp_path / "scratch")
    windows = {"a": 10, "b": 10, "c": 10}
    stream = io.StringIO()
    rec = Recorder(
        scratch, Progress(stream, bars=False), windows, ("dataset",), RunOutcome(30), 0.9,
        flush_interval=3600,
    )  # fmt: skip

    def done(pid: str, rejected: int) -> None:
        bad = [Rejection(f"w{i}", "image", "no_items") for i in range(rejected)]
        write_outcome(scratch, PartitionOutcome(pid, 10, bad))
        rec.records([StepRecord(pid, "dataset", "done", "fp", "t0", "t1", {"rejected": rejected})])

    done("a", 2)  # 28 of 30 can still be ready: 0.93 >= 0.9
    assert not rec.failed
    done("b", 2)  # at most 26 of 30: 0.87 < 0.9, whatever c gives
    assert rec.failed and rec.floor_breached and not rec.failures
    rec.close()
    text = stream.getvalue()
    assert "note: a: 2 of 10 window(s) rejected" in text
    assert "window success rate can no longer reach 0.9: no new partition starts" in text
    assert scratch.read_manifest()["partitions"]["b"]["dataset"]["result"] == {"rejected": 2}


def test_a_new_scene_drops_the_local_files_listing_cache(tmp_path: Path) -> None:
    from rslp.runner.dataset import _link_tree

    src, mirror = tmp_path / "imagery", tmp_path / "mirror"
    src.mkdir()
    (src / "a.tif").write_bytes(b"a")
    _link_tree(src, mirror)
    (mirror / "summary.json").write_text("[]")  # LocalFiles' cache of the listing
    _link_tree(src, mirror)
    assert (mirror / "summary.json").exists()  # nothing changed: the cache stays
    (src / "b.tif").write_bytes(b"b")
    _link_tree(src, mirror)
    assert not (mirror / "summary.json").exists() and (mirror / "b.tif").is_symlink()
    (mirror / "summary.json").write_text("[]")
    (src / "a.tif").unlink()
    _link_tree(src, mirror)
    assert not (mirror / "a.tif").is_symlink() and not (mirror / "summary.json").exists()
