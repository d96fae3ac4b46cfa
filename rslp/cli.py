"""esrunner: a thin command line over :mod:`rslp.runner`.

Commands: ``run`` (the pipeline, with saved state), ``status`` (partitions x steps),
``plan`` (see partitions and windows before spending anything). The seed's flat spelling
``esrunner --local --dataset-config ... --run inference --partition-id ID`` is accepted
and means ``esrunner run ...``.

Exit codes: 0 success; 1 a pipeline step failed or the window success rate is below its
floor; 2 bad usage or a bad project file;
3 another run holds the scratch directory; 70 internal error (a bug: one line on the
console, the traceback in the log); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rslp.checks.project import DEFAULT_MAX_WINDOWS
from rslp.errors import PartitionsFailedError, ProjectError, RunnerError

if TYPE_CHECKING:
    from rslp.runner.scratch import Scratch

EXIT_STEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BUSY = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
STEP_NAMES = ("partition", "dataset", "inference", "postprocess", "combine")


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Print runner errors as one line and exit with the documented code."""
    from rslp.bucket import BucketError
    from rslp.runner.lock import ScratchBusyError
    from rslp.writable import StorageError, storage_error

    try:
        yield
    except ProjectError as e:
        for line in str(e).splitlines():
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except PartitionsFailedError as e:
        for line in str(e).splitlines():
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_BAD_INPUT if e.bad_input else EXIT_STEP_FAILED)
    except ScratchBusyError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_BUSY)
    except (BucketError, StorageError) as e:  # the scratch URL, bucket, keys, or directory
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except RunnerError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_STEP_FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.ClickException, SystemExit):
        raise
    except OSError as e:  # a place it cannot write (permissions, read-only, full): the setup's
        found = storage_error(e)
        if found is None:
            _internal(e)
        click.echo(f"error: {found}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as e:  # a bug: one line here, the traceback in the log
        _internal(e)


def _internal(e: BaseException) -> NoReturn:
    """A bug: one line here, the traceback in the log; exits."""
    from rslp import logs

    click.echo(f"error: {logs.internal_error(e)}", err=True)
    sys.exit(EXIT_INTERNAL)


def _path_option(*names: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(*names, type=click.Path(path_type=Path), default=None, help=help)


RUN_CONFIG_HELP = (
    "The model variant's run config, e.g. olmoearth_run_maize.yaml (a name in PROJECT_DIR or "
    "a path); its model config is model_<variant>.yaml when present, else model.yaml."
)
MODEL_CONFIG_HELP = "The model config, e.g. model_maize.yaml (a name in PROJECT_DIR or a path)."


def variant_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--run-config`` and ``--model-config``: which model variant of PROJECT_DIR.

    Also read from ESRUNNER_RUN_CONFIG / ESRUNNER_MODEL_CONFIG (a variant's image sets them).
    """
    f = click.option(
        "--model-config", envvar="ESRUNNER_MODEL_CONFIG", default=None, help=MODEL_CONFIG_HELP
    )(f)
    return click.option(
        "--run-config", envvar="ESRUNNER_RUN_CONFIG", default=None, help=RUN_CONFIG_HELP
    )(f)


def default_scratch(project_dir: Path, variant: str) -> Path:
    """``PROJECT_DIR/scratch``; a named variant's is ``PROJECT_DIR/scratch_<variant>``."""
    return project_dir / (f"scratch_{variant}" if variant else "scratch")


def _scratch(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | str | None:
    from rslp.bucket import Bucket, BucketError, is_url

    if value is None:
        return None
    if not is_url(value):
        return Path(value)
    try:
        return Bucket(value).url  # checked here; contacted when the command runs
    except BucketError as e:
        raise click.BadParameter(str(e)) from None


def scratch_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--scratch DIR|URL``: a directory, or a bucket URL (never a URL taken for a path)."""
    return click.option("--scratch", type=str, default=None, callback=_scratch, help=help)


def project_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """PROJECT_DIR and the options that locate a project's files (each overrides one)."""
    f = variant_options(f)
    for opt in reversed(
        [
            _path_option("--request", "--prediction-request", help="Request GeoJSON."),
            scratch_option(
                "Scratch directory (default: PROJECT_DIR/scratch, "
                "PROJECT_DIR/scratch_<variant> for a named variant)."
            ),
            _path_option("--dataset-config", help="dataset.json to use instead of the project's."),
            _path_option(
                "--partition-config", "--partition-strategies", help="partition_strategies.yaml."
            ),
            _path_option(
                "--postprocessing-config",
                "--postprocessing-strategies",
                help="postprocessing_strategies.yaml.",
            ),
            _path_option(
                "--checkpoint", help="Model weights (default: PROJECT_DIR/checkpoint.ckpt)."
            ),
        ]
    ):
        f = opt(f)
    return click.argument("project_dir", type=str, required=False, callback=_project_dir)(f)


def _project_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """PROJECT_DIR: a directory, or a project in a bucket (this node's copy of it)."""
    from rslp.bucket import BucketError, is_url

    if value is None or not is_url(value):
        return None if value is None else Path(value)
    from rslp.project_source import fetch_project

    try:
        return fetch_project(value)[0]
    except BucketError as e:
        raise click.BadParameter(str(e)) from None


def resolve_files(project_dir: Path | None, **given: Path | str | None) -> tuple[Any, Path | str]:
    """The project's files (individual options override PROJECT_DIR's) and the scratch dir."""
    from rslp.project import ProjectFiles

    if project_dir is not None:
        base = ProjectFiles.from_dir(
            project_dir,
            Path(str(given["request"])) if given.get("request") else None,
            run_config=given.get("run_config"),
            model_config=given.get("model_config"),
        )
        given = {**given, "model_config": None}  # chosen with the variant
        scratch = given.get("scratch") or default_scratch(project_dir, base.variant)
        if not given.get("scratch") and _in_bucket(project_dir):
            raise click.UsageError("a project in a bucket needs --scratch (a bucket URL)")
    else:
        if given.get("run_config") is not None:
            run = Path(str(given["run_config"]))
            given = {**given, "partition_config": run, "postprocessing_config": run}
        needed = (
            "model_config",
            "dataset_config",
            "partition_config",
            "postprocessing_config",
            "request",
        )
        missing = [n for n in needed if given.get(n) is None]
        if missing:
            flags = ", ".join("--" + n.replace("_", "-") for n in missing)
            raise click.UsageError(
                f"give PROJECT_DIR, or all of the config files (missing {flags})"
            )
        d = Path(str(given["dataset_config"])).resolve().parent
        ckpt = d / "checkpoint.ckpt"
        base = ProjectFiles(
            model_yaml=Path(str(given["model_config"])).resolve(),
            dataset_json=Path(str(given["dataset_config"])).resolve(),
            partition_strategies_yaml=Path(str(given["partition_config"])).resolve(),
            postprocessing_strategies_yaml=Path(str(given["postprocessing_config"])).resolve(),
            request_geojson=Path(str(given["request"])).resolve(),
            checkpoint=ckpt if ckpt.exists() else None,
        )
        scratch = given.get("scratch") or d / "scratch"
    overrides = {
        "model_yaml": given.get("model_config"),
        "dataset_json": given.get("dataset_config"),
        "partition_strategies_yaml": given.get("partition_config"),
        "postprocessing_strategies_yaml": given.get("postprocessing_config"),
        "checkpoint": given.get("checkpoint"),
    }
    kw = {k: Path(str(v)).resolve() for k, v in overrides.items() if v is not None}
    for k, v in kw.items():
        if not v.exists():
            raise ProjectError(v, f"file given for {k} does not exist")
    return ProjectFiles(**{**base.__dict__, **kw}), scratch if isinstance(scratch, str) else Path(
        scratch
    )


def _in_bucket(project_dir: Path) -> bool:
    from rslp.project_source import source_of

    return source_of(project_dir.resolve()) is not None


def parse_steps(value: str | None) -> tuple[str, ...]:
    """``a,b`` -> steps in pipeline order; ``all`` or None -> every step."""
    if not value or value == "all":
        return STEP_NAMES
    asked = [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in asked if s not in STEP_NAMES]
    if bad:
        raise click.BadParameter(f"unknown step(s) {bad}; choose from {', '.join(STEP_NAMES)}")
    return tuple(s for s in STEP_NAMES if s in asked)


def default_workers() -> int:
    """Half the CPUs, at least 1: each worker also runs torch on cores / workers threads.

    Measured on 2 cores (``bench.scale``, 35 small partitions): 1 worker 0.97 x plain
    rslearn, 2 workers 1.07 x; the CPU count was the slower default there.
    """
    return max(1, (os.cpu_count() or 1) // 2)


def _log_to(scratch: Path) -> None:
    from rslp import logs

    logs.log_to(scratch / "logs" / "esrunner.log")


def open_scratch(location: Path | str) -> Scratch:
    """The run's scratch, written to once before any work (a probe, removed), and its log.

    A directory this process cannot write (owned by another user, a read-only mount, a
    full disk) is refused here, naming it, the user and the fix; nothing is left in it.
    """
    from rslp.bucket import is_url
    from rslp.runner.scratch import Scratch
    from rslp.writable import check_writable

    if not is_url(str(location)):
        check_writable(Path(location))
    scratch = Scratch.open(location)
    if scratch.remote is not None:  # a bucket: its node-local working copy
        check_writable(scratch.root, "the node directory")
    _log_to(scratch.root)
    return scratch


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """Run rslearn models on prediction requests.

    The console shows progress, warnings and errors; every log record (rslearn's and
    Lightning's included) goes to SCRATCH/logs/esrunner.log.
    """
    from rslp import logs

    logs.setup(verbose)


@cli.command()
@project_options
@click.option(
    "--steps", "--run", "steps", default=None, help="Comma-separated steps (default: all)."
)
@click.option(
    "--partition-id", "partition_ids", multiple=True, help="Only this partition (repeatable)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Partitions in parallel (default: half the CPUs, at least 1).",
)
@click.option("--force", is_flag=True, help="Redo steps even when done and current.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where partitions run: local processes, or an existing Ray cluster.",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address as ray.init takes it (default: RAY_ADDRESS, else 'auto').",
)
@click.option(
    "--cpus-per-worker", type=float, default=1.0, show_default=True, help="Ray: CPUs per task."
)
@click.option(
    "--gpus-per-worker",
    type=float,
    default=None,
    help="Ray: GPUs per inference task (default: 1 when the cluster has GPUs, else 0).",
)
@click.option(
    "--max-retries",
    type=int,
    default=3,
    show_default=True,
    help="Retries of a partition whose worker process or node died.",
)
@click.option(
    "--max-windows",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_WINDOWS,
    show_default=True,
    help="Refuse a plan of more windows (checked from bounds before partitioning).",
)
@click.option(
    "--min-window-success-rate",
    type=click.FloatRange(0, 1),
    default=None,
    help=(
        "Fail when ready / planned windows falls below this (default: the project's "
        "dataset_build.min_window_success_rate, else 0.9)."
    ),
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="Where inference runs: model.yaml's trainer.accelerator (auto: the GPU when there "
    "is one), a GPU (cuda), or the CPU even where model.yaml asks for a GPU (cpu).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Predict batches of N (overrides model.yaml's data.init_args.batch_size).",
)
@click.option("--local", is_flag=True, hidden=True, help="Accepted for the seed's spelling.")
def run(
    project_dir: Path | None,
    steps: str | None,
    partition_ids: tuple[str, ...],
    workers: int | None,
    force: bool,
    executor: str,
    address: str | None,
    cpus_per_worker: float,
    gpus_per_worker: float | None,
    max_retries: int,
    max_windows: int,
    min_window_success_rate: float | None,
    device: str,
    batch_size: int | None,
    local: bool,
    **given: Path | None,
) -> None:
    """Run the pipeline on PROJECT_DIR, skipping steps that are done and current."""
    from rslp.runner.device import InferenceSettings
    from rslp.runner.executors import RayExecutor
    from rslp.runner.executors.base import Executor
    from rslp.runner.pipeline import Pipeline, PipelineOptions
    from rslp.runner.progress import Progress

    with reported_errors():
        files, scratch_dir = resolve_files(project_dir, **given)
        scratch = open_scratch(scratch_dir)
        options = PipelineOptions(
            steps=parse_steps(steps),
            partition_ids=list(partition_ids) or None,
            workers=workers if workers is not None else default_workers(),
            force=force,
            max_retries=max_retries,
            max_windows=max_windows,
            min_window_success_rate=min_window_success_rate,
            inference=InferenceSettings(device, batch_size),
        )
        runner: Executor | None = None
        if executor == "ray":
            if workers is not None:
                raise click.UsageError("--workers is for --executor local (Ray uses its CPUs)")
            runner = RayExecutor(address, cpus_per_worker, gpus_per_worker, max_retries)
        if workers is None and executor == "local":
            click.echo(
                f"workers: {options.workers} (default: half of {os.cpu_count() or 1} CPUs; "
                "--workers N to change)",
                err=True,
            )
        pipeline = Pipeline(files, scratch, options, Progress(), runner)
        try:
            # before the lock: a broken project leaves only logs and starts no worker
            pipeline.preflight()
            scratch.check_access()  # a bucket refusing writes: now, before any window
            with scratch.lock():
                result = pipeline.run()
        finally:
            pipeline.close()
    for step, pids in result.skipped.items():
        what = "" if step == "combine" else f": {len(pids)} partition(s)"
        click.echo(f"skipped {step} (done and current){what}", err=True)
    if result.outcome is not None and result.outcome.partitions:  # a dataset step ran
        line = result.outcome.summary(result.floor)
        if result.rejected_listing is not None:
            line += f"; rejected windows: {result.rejected_listing}"
        click.echo(line, err=True)
    for where in result.locations:
        click.echo(f"result: {where}")


@cli.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.option("--deep", is_flag=True, help="Also load the checkpoint into the model.")
@click.option("--finetune", is_flag=True, help="Also require the fine-tune's annotation files.")
@variant_options
def check(
    project_dir: Path,
    fmt: str,
    deep: bool,
    finetune: bool,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Check PROJECT_DIR with every rule that depends on this environment.

    The rules of a run's preflight, a real rslearn parse of model.yaml and (--deep) the
    checkpoint loaded into it: what 'esbuild build' and 'esbuild validate --image' run
    inside a model image. Findings go to stdout (JSON: always a list); exit 0 when there
    is no error, 1 when there is. Without --run-config/--model-config every model variant
    of PROJECT_DIR is checked.
    """
    from rslp.checks import check_project
    from rslp.checks.diagnostics import render

    try:
        diags = check_project(project_dir, deep, finetune, run_config, model_config)
    except Exception as e:  # a bug in a rule: one line, the traceback in a log
        from rslp import logs

        click.echo(f"error: {logs.internal_error(e)}", err=True)
        sys.exit(EXIT_INTERNAL)
    if diags or fmt == "json":
        click.echo(render(diags, fmt, project_dir.resolve()))
    sys.exit(1 if any(d.severity == "error" for d in diags) else 0)


@cli.command()
@click.argument("project_dir", type=click.Path(path_type=Path), required=False)
@scratch_option("Scratch directory.")
@variant_options
def status(
    project_dir: Path | None,
    scratch: Path | str | None,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Show partitions x steps with states and timings for a scratch (directory or URL)."""
    from rslp.runner.scratch import Scratch
    from rslp.runner.status import status_table

    root: Path | str = scratch or Path("scratch")
    if scratch is None and project_dir is not None:
        from rslp.variants import choose

        with reported_errors():
            name = choose(project_dir, run_config, model_config).name
        root = default_scratch(project_dir, name)
    with reported_errors():
        opened = Scratch.open(root)
        if not opened.has_manifest():
            click.echo(f"error: no manifest in {root}: nothing has run there", err=True)
            sys.exit(EXIT_BAD_INPUT)
        click.echo(status_table(opened))
        holder = opened.lock().describe()
    if holder:
        click.echo(f"lock: {holder}")


@cli.command()
@project_options
def plan(project_dir: Path | None, **given: Path | None) -> None:
    """Partition the request and show it, before any download or inference.

    Prints partitions, windows, covered area and time ranges, and writes
    plan/windows.geojson (lon/lat; plan/partitions.geojson for more than 100,000 windows)
    and plan/preview.png in the scratch directory. Checks everything but the model's
    classes, which the run imports and checks (a plan builds no model).
    """
    from rslp.checks.preflight import preflight
    from rslp.runner.context import RunContext
    from rslp.runner.preview import preview_plan

    with reported_errors():
        files, scratch_dir = resolve_files(project_dir, **given)
        scratch = open_scratch(scratch_dir)
        preflight(files, import_classes=False)
        report = preview_plan(RunContext(files=files, scratch=scratch))
    click.echo(report.table())
    if report.listed:
        click.echo(f"windows: {report.geojson}")
    else:
        click.echo(
            f"partitions: {report.geojson} ({report.windows:,} windows: too many to list one "
            f"by one; each partition's are in {report.geojson.parent / 'windows'}/<id>.jsonl)"
        )
    click.echo(f"preview: {report.png}")


FINETUNE_STEPS = ("prepare_windows", "build_dataset", "fit", "evaluate")


@cli.command()
@click.argument("project_dir", type=str, callback=_project_dir)
@scratch_option(
    "Scratch directory, or a bucket URL (s3://bucket/prefix; default: PROJECT_DIR/scratch)."
)
@click.option("--max-epochs", type=click.IntRange(min=1), default=None, help="Epochs of the fit.")
@click.option(
    "--steps",
    default=",".join(FINETUNE_STEPS),
    show_default=True,
    help="Comma-separated steps (each runs alone from what the earlier ones left in scratch).",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the fine-tuned model as a new project version here.",
)
@variant_options
def finetune(
    project_dir: Path,
    scratch: Path | str | None,
    max_epochs: int | None,
    steps: str,
    export_dir: Path | None,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Fine-tune PROJECT_DIR's model on its annotations, from its checkpoint.

    Reads finetune_strategies.yaml (or window_prep in olmoearth_run.yaml) and
    annotations/; writes SCRATCH/finetune/: checkpoint.ckpt (the best epoch by the
    validation metric), metrics.json (before and after on the validation split) and
    report.png. A rerun after an interruption resumes the fit from its last epoch.
    With --scratch s3://..., each step starts from the bucket's finetune/ and puts it
    back when it ends (PROJECT_DIR may then be a bucket URL too).
    """
    from rslp.bucket import is_url
    from rslp.esfinetune_runner import EsFineTuneRunner
    from rslp.runner.scratch import node_dir
    from rslp.writable import check_writable

    chosen = [s.strip() for s in steps.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in FINETUNE_STEPS]
    if unknown:
        raise click.BadParameter(f"unknown step(s) {unknown}; known: {list(FINETUNE_STEPS)}")
    with reported_errors():
        from rslp.variants import choose

        if not scratch and _in_bucket(project_dir):
            raise click.UsageError("a project in a bucket needs --scratch (a bucket URL)")
        name = choose(project_dir, run_config, model_config).name
        root = scratch or default_scratch(project_dir, name)
        if not is_url(str(root)):
            check_writable(Path(root))
        runner = EsFineTuneRunner.from_project(
            project_dir, root, max_epochs, run_config=run_config, model_config=model_config
        )
        if export_dir is not None and export_dir.exists():
            raise ProjectError(export_dir, "already exists; give a new directory for --export")
        # SCRATCH/logs/, on this node (a bucket's working copy) for a bucket scratch
        bucket = runner.bucket
        _log_to(node_dir(bucket.url) if bucket else runner.scratch.root.parent)
        for step in FINETUNE_STEPS:
            if step not in chosen:
                continue
            click.echo(f"[finetune] {step}", err=True)
            result = getattr(runner, step)()
            if step == "prepare_windows":
                click.echo(f"windows: {result['splits']}", err=True)
            if step == "evaluate":
                click.echo(
                    f"validation accuracy: {result['before']['accuracy']:.3f} before, "
                    f"{result['after']['accuracy']:.3f} after"
                )
        out = runner.scratch.root
        for name in ("checkpoint.ckpt", "metrics.json", "report.png"):
            if (out / name).exists():
                click.echo(f"result: {runner.where(out / name)}")
        if export_dir is not None:
            click.echo(f"exported: {runner.export(export_dir)}")


@cli.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    type=click.Choice(["seed", "reference", "legacy"]),
    required=True,
    help="seed: partition_/postprocessing_strategies.yaml; reference (or legacy): "
    "olmoearth_run.yaml, dataset.json, model.yaml (a unified project: its transpiled files).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="A new directory.")
def convert(project_dir: Path, to: str, out: Path) -> None:
    """Write PROJECT_DIR in another project format, as a new project at --out.

    Seed and reference formats hold the same project: the result runs to the same
    results. A unified project (olmoearth_config.yaml) becomes the reference-format files
    a run of it uses, for reading or editing. Other files are copied; YAML comments of
    the converted files are not kept.
    """
    from rslp.convert import LEGACY
    from rslp.convert import convert as run_convert

    with reported_errors():
        notes = run_convert(project_dir, to, out)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {out} ({LEGACY.get(to, to)} format)")


def seed_spelling(args: list[str]) -> list[str]:
    """``esrunner --local --dataset-config ...`` (no command) means ``esrunner run ...``."""
    commands = set(cli.commands)
    flat = args and args[0].startswith("--") and args[0] not in ("--help", "--verbose")
    if flat and not any(a in commands for a in args):
        return ["run", *args]
    return args


def main() -> NoReturn:
    """Console entry point: ends the process (:func:`rslp.process_exit.exit_now`)."""
    # Library progress bars (rslearn's window loading) stay off the console; tqdm reads
    # this when it is first imported. Our own bars pass disable=False.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from rslp.process_exit import exit_now

    try:
        cli(args=seed_spelling(sys.argv[1:]))
    except SystemExit as e:  # click ends every command with one
        exit_now(e.code)
    exit_now(0)


if __name__ == "__main__":
    main()
