"""Run steps over partitions with saved state: skip what is done, redo what changed.

The manifest (``scratch/manifest.json``) records, per partition and step, its state,
start and end times, outputs and *fingerprint*: a hash chained from the hashes of the
inputs that step and every step before it read:

========== ==============================================
step       inputs
========== ==============================================
partition  request, partition_strategies.yaml
dataset    dataset.json
inference  model.yaml, checkpoint
postprocess postprocessing_strategies.yaml
combine    (none of its own)
========== ==============================================

So a changed postprocessing config re-runs postprocess and combine, not inference. A step
whose fingerprint changed (or with ``force``) is reset before it runs; a step that was
interrupted resumes (rslearn skips windows whose layers are complete). When a step runs,
later steps of that partition are marked stale.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rslp.errors import RunnerError, StepError
from rslp.project import ProjectFiles
from rslp.runner.context import RunContext
from rslp.runner.progress import Progress
from rslp.runner.scratch import Scratch

logger = logging.getLogger(__name__)

STEPS = ("partition", "dataset", "inference", "postprocess", "combine")
PARTITION_STEPS = ("dataset", "inference", "postprocess")
STEP_INPUTS = {
    "partition": ("request.geojson", "partition_strategies.yaml"),
    "dataset": ("dataset.json",),
    "inference": ("model.yaml", "checkpoint.ckpt"),
    "postprocess": ("postprocessing_strategies.yaml",),
    "combine": (),
}


def fingerprints(input_hashes: dict[str, str]) -> dict[str, str]:
    """Each step's fingerprint: its inputs' hashes chained after the previous step's."""
    out: dict[str, str] = {}
    prev = ""
    for step in STEPS:
        text = prev + "".join(f"|{k}={input_hashes.get(k, '-')}" for k in STEP_INPUTS[step])
        prev = out[step] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def reset_step(ctx: RunContext, partition_id: str, step: str) -> None:
    """Remove what a step wrote for a partition, so it runs from scratch."""
    scratch = ctx.scratch
    if step == "dataset":
        shutil.rmtree(scratch.dataset / "windows" / partition_id, ignore_errors=True)
    elif step == "inference":
        layer = ctx.output_layer.name
        for layers in (scratch.dataset / "windows" / partition_id).glob("*/layers"):
            for d in layers.iterdir():
                if d.name == layer or d.name.startswith(f"{layer}."):
                    shutil.rmtree(d, ignore_errors=True)
    elif step == "postprocess":
        shutil.rmtree(scratch.partition_dir(partition_id), ignore_errors=True)


@dataclass
class PipelineOptions:
    """What to run.

    Attributes:
        steps: the steps to run, in pipeline order.
        partition_ids: only these partitions (default: all).
        workers: partitions processed in parallel (1: in this process).
        force: redo steps even when their state is done and current.
    """

    steps: tuple[str, ...] = STEPS
    partition_ids: list[str] | None = None
    workers: int = 1
    force: bool = False


@dataclass
class PipelineResult:
    """What a pipeline run did."""

    partitions: list[str]
    ran: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    results: list[Path] = field(default_factory=list)


def _needs_run(rec: dict[str, Any], fp: str, force: bool) -> tuple[bool, bool]:
    """(run it, reset it first) for a manifest record and the current fingerprint."""
    if force:
        return True, True
    if rec.get("state") == "done" and rec.get("fingerprint") == fp:
        return False, False
    # Interrupted at the same fingerprint: resume; otherwise start clean.
    return True, rec.get("fingerprint") not in (None, fp)


def partition_worker(
    files: ProjectFiles,
    scratch_root: Path,
    partition_id: str,
    steps: tuple[str, ...],
    fps: dict[str, str],
    force: bool,
    report: Callable[[str, str, bool], None] | None = None,
) -> dict[str, bool]:
    """Run the per-partition steps of one partition (in this or a worker process).

    Returns:
        step -> whether it ran (False: skipped as done and current).

    Raises:
        StepError: a step failed; ``sys.exit`` inside a step is turned into one too.
    """
    from rslp.runner import dataset, inference, postprocess

    ctx = RunContext(files=files, scratch=Scratch(scratch_root))
    actions: dict[str, Callable[[], Any]] = {
        "dataset": lambda: dataset.build_dataset(ctx, partition_id),
        "inference": lambda: inference.run_inference(ctx, partition_id),
        "postprocess": lambda: [str(p) for p in postprocess.postprocess(ctx, partition_id)],
    }
    ran: dict[str, bool] = {}
    upstream_ran = False
    for step in PARTITION_STEPS:
        if step not in steps:
            continue
        rec = ctx.scratch.read_manifest().get("partitions", {}).get(partition_id, {}).get(step, {})
        run, reset = _needs_run(rec, fps[step], force)
        if upstream_ran and not run:
            run, reset = True, True  # its inputs were just rebuilt
        if not run:
            ran[step] = False
            if report:
                report(step, partition_id, False)
            continue
        if reset:
            reset_step(ctx, partition_id, step)
        ctx.scratch.record_step(partition_id, step, "running", fingerprint=fps[step])
        try:
            out = actions[step]()
        except SystemExit as e:
            err = StepError(step, f"exited with status {e.code}", partition_id)
            ctx.scratch.record_step(
                partition_id, step, "failed", fingerprint=fps[step], error=str(err)
            )
            raise err from None
        except BaseException as e:
            ctx.scratch.record_step(
                partition_id, step, "failed", fingerprint=fps[step], error=str(e)
            )
            raise
        ctx.scratch.record_step(partition_id, step, "done", fingerprint=fps[step], result=out)
        ran[step] = upstream_ran = True
        for later in PARTITION_STEPS[PARTITION_STEPS.index(step) + 1 :]:
            if later not in steps:
                ctx.scratch.record_step(partition_id, later, "stale")
        if report:
            report(step, partition_id, True)
    return ran


def _init_worker(threads: int, log_dir: str) -> None:
    """Worker start-up: share the cores, and send its output to a log file."""
    import torch

    torch.set_num_threads(threads)
    os.makedirs(log_dir, exist_ok=True)
    fd = os.open(
        os.path.join(log_dir, f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    logging.basicConfig(level=logging.INFO, force=True)


def _pool_worker(args: tuple[Any, ...]) -> tuple[str, dict[str, bool]]:
    files, scratch_root, pid, steps, fps, force = args
    try:
        return pid, partition_worker(files, scratch_root, pid, steps, fps, force)
    except SystemExit as e:  # never let a worker's sys.exit look like success
        raise StepError("worker", f"exited with status {e.code}", pid) from None


class Pipeline:
    """Runs a project's steps with saved state, optionally across worker processes.

    Args:
        files: the project's files.
        scratch: the scratch directory.
        options: what to run.
        progress: where to report progress.
    """

    def __init__(
        self,
        files: ProjectFiles,
        scratch: Scratch,
        options: PipelineOptions,
        progress: Progress | None = None,
    ) -> None:
        self.files = files
        self.scratch = scratch
        self.options = options
        self.progress = progress or Progress(bars=False)
        self.ctx = RunContext(files=files, scratch=scratch)

    def run(self) -> PipelineResult:
        """Run the selected steps; returns what ran, what was skipped and the results."""
        from rslp.runner.partition import load_plan, run_partition

        hashes = self.scratch.snapshot_inputs(input_files(self.files))
        self.scratch.update_manifest(inputs=hashes)
        fps = fingerprints(hashes)
        opts = self.options
        result = PipelineResult(partitions=[])
        rec = self.scratch.read_manifest().get("partition_step", {})
        plan_ok = (self.scratch.plan_dir / "index.json").exists()
        run, _ = _needs_run(rec, fps["partition"], opts.force and "partition" in opts.steps)
        if run or not plan_ok:
            if "partition" not in opts.steps and plan_ok:
                raise StepError("partition", "the plan is out of date: run the partition step")
            ids = run_partition(self.ctx)
            self.scratch.update_manifest(
                partition_step={"state": "done", "fingerprint": fps["partition"]}, partition_ids=ids
            )
            result.ran["partition"] = ids
        windows = {p["id"]: p["num_windows"] for p in load_plan(self.ctx)["partitions"]}
        all_ids = list(windows)
        selected = opts.partition_ids or all_ids
        unknown = [p for p in selected if p not in windows]
        if unknown:
            raise StepError(
                "partition", f"unknown partition id(s) {unknown}; known: {all_ids[:10]}"
            )
        result.partitions = selected
        steps = tuple(s for s in PARTITION_STEPS if s in opts.steps)
        if steps:
            for step in steps:
                self.progress.start(step, sum(windows[p] for p in selected))
            self._run_partitions(selected, steps, fps, result, windows)
        if "combine" in opts.steps:
            result.results = self._combine(selected, fps, result)
        self.progress.close()
        return result

    def _report(
        self, result: PipelineResult, windows: dict[str, int]
    ) -> Callable[[str, str, bool], None]:
        def report(step: str, pid: str, ran: bool) -> None:
            (result.ran if ran else result.skipped).setdefault(step, []).append(pid)
            note = f"{pid} {'done' if ran else 'skipped (done)'}"
            self.progress.advance(step, windows[pid], note)

        return report

    def _run_partitions(
        self,
        ids: list[str],
        steps: tuple[str, ...],
        fps: dict[str, str],
        result: PipelineResult,
        windows: dict[str, int],
    ) -> None:
        report = self._report(result, windows)
        workers = max(1, min(self.options.workers, len(ids)))
        if workers == 1:
            for pid in ids:
                partition_worker(
                    self.files, self.scratch.root, pid, steps, fps, self.options.force, report
                )
            return
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        args = [(self.files, self.scratch.root, pid, steps, fps, self.options.force) for pid in ids]
        errors: list[str] = []
        with ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(threads, str(self.scratch.logs)),
        ) as pool:
            futures = {pool.submit(_pool_worker, a): a[2] for a in args}
            for fut in as_completed(futures):
                pid = futures[fut]
                try:
                    _, ran = fut.result()
                except Exception as e:  # StepError, BrokenProcessPool, ...
                    errors.append(f"{pid}: {e}")
                    continue
                for step in steps:
                    report(step, pid, ran.get(step, False))
        if errors:
            raise RunnerError(f"{len(errors)} partition(s) failed: " + "; ".join(errors))

    def _combine(self, ids: list[str], fps: dict[str, str], result: PipelineResult) -> list[Path]:
        from rslp.runner.postprocess import combine

        manifest = self.scratch.read_manifest()
        rec = manifest.get("combine_step", {})
        current = rec.get("fingerprint") == fps["combine"] and rec.get("partitions") == sorted(ids)
        nothing_new = not any(result.ran.get(s) for s in PARTITION_STEPS)
        if current and nothing_new and not self.options.force and rec.get("state") == "done":
            result.skipped["combine"] = ["all"]
            return [Path(p) for p in rec.get("results", [])]
        not_ready = [
            p
            for p in ids
            if manifest.get("partitions", {}).get(p, {}).get("postprocess", {}).get("fingerprint")
            != fps["postprocess"]
            or manifest["partitions"][p]["postprocess"].get("state") != "done"
        ]
        if not_ready:
            raise StepError(
                "combine",
                f"partitions not postprocessed with the current configs: {not_ready[:10]}",
            )
        outs = combine(self.ctx, ids)
        self.scratch.update_manifest(
            combine_step={
                "state": "done",
                "fingerprint": fps["combine"],
                "partitions": sorted(ids),
                "results": [str(p) for p in outs],
            },
            results=[str(p) for p in outs],
        )
        result.ran["combine"] = ["all"]
        return outs


def input_files(files: ProjectFiles) -> dict[str, Path | None]:
    """The inputs recorded and hashed in the manifest, by their name in ``inputs/``."""
    return {
        "model.yaml": files.model_yaml,
        "dataset.json": files.dataset_json,
        "partition_strategies.yaml": files.partition_strategies_yaml,
        "postprocessing_strategies.yaml": files.postprocessing_strategies_yaml,
        "request.geojson": files.request_geojson,
        "checkpoint.ckpt": files.checkpoint,
    }
