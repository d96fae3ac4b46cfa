"""esrunner: the command line over :class:`rslp.espredict_runner.EsPredictRunner`.

Exit codes: 0 success, 1 a pipeline step failed, 2 bad usage or a bad project file.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from rslp.errors import ProjectError, RunnerError

EXIT_STEP_FAILED = 1
EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Print runner errors as one line and exit with the documented code."""
    try:
        yield
    except ProjectError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except RunnerError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_STEP_FAILED)


def project_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """PROJECT_DIR, --request and --scratch, shared by the commands that run a project."""
    f = click.option(
        "--scratch",
        type=click.Path(path_type=Path),
        default=None,
        help="Scratch directory (default: PROJECT_DIR/scratch).",
    )(f)
    f = click.option(
        "--request",
        type=click.Path(path_type=Path),
        default=None,
        help="Request GeoJSON (default: the first prediction/*.geojson).",
    )(f)
    return click.argument("project_dir", type=click.Path(path_type=Path))(f)


def make_runner(project_dir: Path, request: Path | None, scratch: Path | None) -> Any:
    """Build the runner for a project directory."""
    from rslp.espredict_runner import EsPredictRunner

    return EsPredictRunner.from_project(project_dir, scratch or project_dir / "scratch", request)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Run rslearn models on prediction requests."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@project_options
def run(project_dir: Path, request: Path | None, scratch: Path | None) -> None:
    """Run the whole pipeline on PROJECT_DIR and print where the results are."""
    with reported_errors():
        runner = make_runner(project_dir, request, scratch)
        partitions = runner.partition()
        for i, pid in enumerate(partitions, 1):
            click.echo(f"[{i}/{len(partitions)}] partition {pid}", err=True)
            runner.build_dataset(pid)
            runner.run_inference(pid)
            runner.postprocess(pid)
        results = runner.combine(partitions)
    for path in results:
        click.echo(f"result: {path}")


@main.command()
@project_options
def plan(project_dir: Path, request: Path | None, scratch: Path | None) -> None:
    """Partition PROJECT_DIR's request and show it, before any download or inference.

    Prints partitions, windows, covered area and time ranges, and writes
    plan/windows.geojson (lon/lat) and plan/preview.png in the scratch directory.
    """
    from rslp.runner.preview import preview_plan

    with reported_errors():
        report = preview_plan(make_runner(project_dir, request, scratch).ctx)
    click.echo(report.table())
    click.echo(f"windows: {report.geojson}")
    click.echo(f"preview: {report.png}")
