"""esbuild: a thin command line over the build toolchain (validate, schema).

Exit codes: 0 success (warnings allowed); 1 the project has errors; 2 bad usage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from esbuild.diagnostics import render


@click.group()
def cli() -> None:
    """Validate, lock, build and publish esrunner model images."""


@cli.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.option("--deep", is_flag=True, help="Also load the checkpoint into the model.")
@click.option(
    "--allow-sources", is_flag=True, help="Allow index/URL/path options in requirements.txt."
)
def validate(project_dir: Path, fmt: str, deep: bool, allow_sources: bool) -> None:
    """Check PROJECT_DIR against the JSON schemas and the cross-file rules."""
    from esbuild.validate import validate_project

    diags = validate_project(project_dir, deep=deep, allow_sources=allow_sources)
    errors = [d for d in diags if d.severity == "error"]
    if diags:
        click.echo(render(diags, fmt, Path.cwd()))
    if fmt == "text":
        click.echo(
            f"{project_dir}: {len(errors)} error(s), {len(diags) - len(errors)} warning(s)",
            err=True,
        )
    sys.exit(1 if errors else 0)


@cli.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write the schemas here."
)
def schema(out: Path | None) -> None:
    """Write the project files' JSON Schemas (default: print their names and ids)."""
    from esbuild import schema as schemas

    if out is None:
        for name, s in schemas.generate().items():
            click.echo(f"{name}  {s['$id']}")
        return
    for p in schemas.write(out):
        click.echo(str(p))


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
