"""esrunner: the command line over :class:`rslp.espredict_runner.EsPredictRunner`.

Exit codes: 0 success, 1 a pipeline step failed, 2 bad usage or a bad project file.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from rslp.errors import ProjectError, RunnerError


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Run rslearn models on prediction requests."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option(
    "--request",
    type=click.Path(path_type=Path),
    help="Request GeoJSON (default: prediction/*.geojson).",
)
@click.option(
    "--scratch",
    type=click.Path(path_type=Path),
    default=None,
    help="Scratch dir (default: PROJECT_DIR/scratch).",
)
def run(project_dir: Path, request: Path | None, scratch: Path | None) -> None:
    """Run the whole pipeline on PROJECT_DIR and print where the results are."""
    from rslp.espredict_runner import EsPredictRunner

    scratch = scratch or project_dir / "scratch"
    try:
        runner = EsPredictRunner.from_project(project_dir, scratch, request)
        partitions = runner.partition()
        for i, pid in enumerate(partitions, 1):
            click.echo(f"[{i}/{len(partitions)}] partition {pid}", err=True)
            runner.build_dataset(pid)
            runner.run_inference(pid)
            runner.postprocess(pid)
        results = runner.combine(partitions)
    except ProjectError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except RunnerError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    for path in results:
        click.echo(f"result: {path}")
