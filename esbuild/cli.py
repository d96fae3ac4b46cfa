"""esbuild: a thin command line over the build toolchain (validate, schema, lock).

Exit codes: 0 success (warnings allowed); 1 the project has errors, a lock is stale or
cannot be made; 2 bad usage, or an internal error (a bug: one line, the traceback in a log).
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rslp.checks.diagnostics import Diagnostic, render

if TYPE_CHECKING:
    from rslp.variants import Variant


@click.group()
def cli() -> None:
    """Validate, lock, build and publish esrunner model images."""
    from rslp import logs

    logs.setup()


@contextlib.contextmanager
def internal_errors() -> Iterator[None]:
    """A bug (an unexpected exception) is one line and exit 2; the traceback goes to a log."""
    from rslp import logs

    try:
        yield
    except Exception as e:
        click.echo(f"error: {logs.internal_error(e)}", err=True)
        sys.exit(2)


def variant_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--run-config`` and ``--model-config``: which model variant of the project."""
    from rslp.cli import variant_options as options

    return options(f)


def chosen_variant(project: Path, run_config: str | None, model_config: str | None) -> Variant:
    """The model variant of ``project`` the flags choose; a bad choice exits 2 with its error."""
    from rslp.errors import ProjectError
    from rslp.variants import choose

    try:
        return choose(project, run_config, model_config)
    except ProjectError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


def chosen_variants(
    project: Path, run_config: str | None, model_config: str | None, tags: tuple[str, ...] = ()
) -> list[Variant]:
    """The variant the flags choose, else every variant of ``project`` (build, publish).

    Several variants with explicit ``--tag`` values exit 2 (their images would collide).
    """
    if run_config is not None or model_config is not None:
        return [chosen_variant(project, run_config, model_config)]
    from rslp.variants import list_variants

    found = list_variants(project.resolve()) or [chosen_variant(project, None, None)]
    if tags and len(found) > 1:
        names = ", ".join(v.describe() for v in found)
        click.echo(
            f"error: {project} holds {len(found)} model variants ({names}); --tag names one "
            "image: choose its variant with --run-config",
            err=True,
        )
        sys.exit(2)
    return found


@cli.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.option("--deep", is_flag=True, help="Also load the checkpoint into the model.")
@click.option(
    "--allow-sources", is_flag=True, help="Allow index/URL/path options in requirements.txt."
)
@click.option(
    "--require-imports",
    is_flag=True,
    help="A module missing here is an error even when requirements.txt may provide it.",
)
@click.option(
    "--image",
    default=None,
    help="Run the environment's checks inside this image (offline) instead of here.",
)
@click.option(
    "--finetune",
    is_flag=True,
    help="Also require the fine-tune's annotation files (checked anyway when present).",
)
@variant_options
def validate(
    project_dir: Path,
    fmt: str,
    deep: bool,
    allow_sources: bool,
    require_imports: bool,
    image: str | None,
    finetune: bool,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Check PROJECT_DIR against the JSON schemas and the cross-file rules.

    Without --run-config/--model-config every model variant of PROJECT_DIR is checked.
    """
    from esbuild.image import BuildError
    from esbuild.validate import validate_project

    try:
        with internal_errors():  # a bug in a rule: never a traceback for the user's project
            diags = validate_project(
                project_dir,
                deep,
                allow_sources,
                require_imports,
                image,
                finetune,
                run_config,
                model_config,
            )
    except BuildError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    report(diags, fmt, project_dir)
    sys.exit(1 if any(d.severity == "error" for d in diags) else 0)


def report(diags: list[Diagnostic], fmt: str, project_dir: Path) -> None:
    """Findings on stdout (JSON: always a list), the count on stderr."""
    if diags or fmt == "json":
        click.echo(render(diags, fmt, Path.cwd()))
    if fmt == "text":
        counts = Counter(d.severity for d in diags)
        click.echo(
            f"{project_dir}: {counts['error']} error(s), {counts['warning']} warning(s)"
            + (f", {counts['notice']} notice(s)" if counts["notice"] else ""),
            err=True,
        )


@cli.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write the schemas here."
)
def schema(out: Path | None) -> None:
    """Write the project files' JSON Schemas (default: print their names and ids)."""
    from rslp.checks import schema as schemas

    if out is None:
        for name, s in schemas.generate().items():
            click.echo(f"{name}  {s['$id']}")
        return
    for p in schemas.write(out):
        click.echo(str(p))


def project_dirs(projects: tuple[Path, ...], all_projects: bool) -> list[Path]:
    """The projects named, or with ``--all`` every project directory under ``data/``.

    A project has a model config (``model.yaml``, a variant's ``model_<name>.yaml``) or a
    unified file (``olmoearth_config.yaml``) (:func:`rslp.formats.project_dirs`).
    """
    if all_projects:
        from rslp.formats import project_dirs as projects_under

        found = projects_under(Path("data"))
        return list(projects) + [p for p in found if p not in projects]
    if not projects:
        raise click.UsageError("name a project directory, or use --all")
    return list(projects)


@cli.command()
@click.argument("projects", nargs=-1, type=click.Path(path_type=Path))
@click.option("--all", "all_projects", is_flag=True, help="Every project under data/.")
@click.option("--check", is_flag=True, help="Only check that each lock is current (for CI).")
@click.option(
    "--upgrade-package", "upgrade", multiple=True, help="Upgrade this package (repeatable)."
)
@click.option(
    "--allow-sources", is_flag=True, help="Allow index/URL/path options in requirements.txt."
)
@click.option("--force", is_flag=True, help="Resolve even when the inputs are unchanged.")
@click.option(
    "--base", type=click.Path(path_type=Path), default=None, help="Base requirements file."
)
@variant_options
def lock(
    projects: tuple[Path, ...],
    all_projects: bool,
    check: bool,
    upgrade: tuple[str, ...],
    allow_sources: bool,
    force: bool,
    base: Path | None,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Merge requirements/base.in with each project's requirements.txt into requirements.lock.

    The model variants of a directory share its requirements.txt, so they share one lock;
    --run-config/--model-config only check that the variant is there.
    """
    from esbuild import lock as locking

    failed = False
    for project in project_dirs(projects, all_projects):
        if run_config is not None or model_config is not None:
            chosen_variant(project, run_config, model_config)  # exits 2 naming a bad choice
        inputs = locking.lock_inputs(project, base)
        if check:
            problems = locking.check_lock(inputs)
            for p in problems:
                click.echo(f"{project}: {p}", err=True)
            failed |= bool(problems)
            if not problems:
                click.echo(f"{inputs.lock}: current")
            continue
        try:
            path, resolved = locking.lock(inputs, upgrade, allow_sources, force)
        except locking.LockError as e:
            click.echo(f"error: {project}: {e}", err=True)
            failed = True
            continue
        click.echo(f"{inputs.lock}: {'locked' if resolved else 'current (inputs unchanged)'}")
    sys.exit(1 if failed else 0)


def image_source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--base-image`` and ``--wheelhouse``: where a build's OS image and wheels come from."""
    f = click.option(
        "--wheelhouse",
        type=click.Path(path_type=Path),
        default=None,
        help="Download the lock's wheels here (hash-checked) and build offline (--network=none).",
    )(f)
    return click.option(
        "--base-image", default=None, help="BASE_IMAGE build argument (default: the Dockerfile's)."
    )(f)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option(
    "--tag", "tags", multiple=True, help="Image tag (repeatable); default: metadata-action style."
)
@image_source_options
@click.option("--registry", default="ghcr.io", show_default=True, help="Registry for default tags.")
@click.option(
    "--namespace", default=None, help="Namespace for default tags (default: the GitHub owner)."
)
@click.option(
    "--log", type=click.Path(path_type=Path), default=None, help="Write the docker build log here."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github"]),
    default="text",
    help="How findings are printed (github: workflow annotations on stdout).",
)
@click.option(
    "--pull-base",
    is_flag=True,
    help="Pull the base image (esrunner-env:<digest>) from the tags' registry when the "
    "engine lacks it, before building it.",
)
@variant_options
def build(
    project: Path,
    tags: tuple[str, ...],
    base_image: str | None,
    wheelhouse: Path | None,
    registry: str,
    namespace: str | None,
    log: Path | None,
    fmt: str,
    run_config: str | None,
    model_config: str | None,
    pull_base: bool,
) -> None:
    """Validate PROJECT, check its lock, build its model image, check PROJECT inside it, tag it.

    The project's layers go on the base image ``esrunner-env:<digest>`` (the base lock,
    the Dockerfile's base stage, the OS image): taken from the engine, else (--pull-base)
    from the registry of the image's tags, else built once for every project after it.

    The image is tagged only when the project passes inside it: imports, model parse and
    every other check run in the image's environment (offline), with its requirements.
    Each model variant gets its own image, PROJECT-VARIANT, which runs that variant by
    default; without --run-config/--model-config every variant is built.
    """
    from esbuild import image
    from esbuild import lock as locking
    from esbuild.validate import validate_project

    def refuse(diags: list[Diagnostic], why: str) -> None:
        errors = [d for d in diags if d.severity == "error"]
        if errors:
            if fmt == "github":
                click.echo(render(errors, fmt, Path.cwd()))
            else:
                click.echo(render(errors, fmt, Path.cwd()), err=True)
            click.echo(f"error: {project} {why}", err=True)
            sys.exit(1)

    variants = chosen_variants(project, run_config, model_config, tags)
    stale = locking.check_lock(locking.lock_inputs(project))
    for variant in variants:
        run_name = variant.run_config.name if variant.run_config else None
        model_name = variant.model_config.name
        with internal_errors():
            refuse(
                validate_project(project, run_config=run_name, model_config=model_name),
                "does not validate; not building",
            )
        if stale:
            click.echo("error: " + "; ".join(stale), err=True)
            sys.exit(1)
        try:
            plan = image.plan_build(
                project,
                list(tags) or None,
                base_image,
                registry,
                namespace,
                offline=wheelhouse is not None,
                variant=variant,
            )
            if wheelhouse is not None:
                image.fill_wheelhouse(
                    plan.repo, project.resolve() / "requirements.lock", wheelhouse.resolve()
                )
            base = image.base_ref(plan.repo, base_image)
            remote = image.beside(plan.tags[0], base) if pull_base else None
            how = image.ensure_base(plan, base, remote, log)
            click.echo(f"base: {base} ({how})", err=True)
            image_id = image.run_build(plan, log, deps_from=base)
            with internal_errors():
                inside = validate_project(
                    project, image=image_id, run_config=run_name, model_config=model_name
                )
            refuse(inside, f"does not pass inside its image {image_id}; not tagged")
            image.tag_image(image_id, plan.tags)
        except image.BuildError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        click.echo(f"image: {image_id}")
        for t in plan.tags:
            click.echo(f"tag: {t}")


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--registry", default="ghcr.io", show_default=True, help="Registry to push to.")
@click.option("--namespace", default=None, help="Namespace (default: the GitHub owner).")
@click.option("--tag", "tags", multiple=True, help="Tags to push (default: metadata-action style).")
@click.option(
    "--image", "source", default=None, help="Local image to publish (default: the first tag)."
)
@click.option("--force", is_flag=True, help="Overwrite a version tag that names another image.")
@variant_options
def publish(
    project: Path,
    registry: str,
    namespace: str | None,
    tags: tuple[str, ...],
    source: str | None,
    force: bool,
    run_config: str | None,
    model_config: str | None,
) -> None:
    """Push PROJECT's built image under every tag and print its digest.

    The base image it is built on (esrunner-env:<digest>) is pushed first, once, to the
    same registry and namespace, unless the registry has it.

    Log in with 'docker login REGISTRY' first: credentials are never passed as flags.
    """
    from esbuild import image
    from esbuild import publish as publishing

    variants = chosen_variants(project, run_config, model_config, tags)
    if source is not None and len(variants) > 1:
        click.echo("error: --image names one image; choose its variant with --run-config", err=True)
        sys.exit(2)
    bases: dict[str, str] = {}
    for variant in variants:
        plan = image.plan_build(
            project, list(tags) or None, None, registry, namespace, variant=variant
        )
        try:
            base = publishing.base_of(source or plan.tags[0])
            remote = image.beside(plan.tags[0], base) if base else ""
            if remote and remote not in bases:  # once per command, before the project images
                bases[remote] = publishing.publish_base(base, remote)
                click.echo(f"base: {remote} ({bases[remote]})")
            result = publishing.publish(source or plan.tags[0], plan.tags, force)
        except publishing.PublishError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        for t in result.pushed:
            click.echo(f"pushed: {t}")
        for t in result.unchanged:
            click.echo(f"unchanged: {t} (already this image)")
        click.echo(f"digest: {result.digest}")


@cli.command("base")
@image_source_options
@click.option("--registry", default="ghcr.io", show_default=True, help="Registry of the base.")
@click.option("--namespace", default=None, help="Namespace (default: the GitHub owner).")
@click.option("--pull", is_flag=True, help="Pull it from the registry before building it.")
@click.option("--push", is_flag=True, help="Push it to the registry (unless it is there).")
def base(
    base_image: str | None,
    wheelhouse: Path | None,
    registry: str,
    namespace: str | None,
    pull: bool,
    push: bool,
) -> None:
    """Make the base image every project image builds on, once: esrunner-env:<digest>.

    The digest covers requirements/base.lock, the Dockerfile's base stage and the OS
    image. Found in the engine, else (--pull) pulled, else built; --push puts it in the
    registry for builds elsewhere (esbuild build --pull-base). Prints its names.
    """
    from esbuild import image
    from esbuild import publish as publishing
    from esbuild.gitinfo import git_info

    repo = Path.cwd()
    try:
        ns = (namespace or image.default_namespace(git_info(repo))).lower()
        local = image.base_ref(repo, base_image)
        remote = f"{registry}/{ns}/{local}"
        plan = image.BuildPlan(repo, "", [], base_image, offline=wheelhouse is not None)
        if wheelhouse is not None:
            image.fill_wheelhouse(repo, repo / "requirements" / "base.lock", wheelhouse.resolve())
        how = image.ensure_base(plan, local, remote if pull else None)
        click.echo(f"base: {local} ({how})")
        if push:
            click.echo(f"pushed: {remote} ({publishing.publish_base(local, remote)})")
    except image.BuildError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@cli.command()
@click.option(
    "--base", default="origin/main", show_default=True, help="Compare HEAD with this ref."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (for a workflow matrix).")
def changed(base: str, as_json: bool) -> None:
    """List the projects under data/ that the change from BASE to HEAD touches."""
    import json

    from esbuild import publish as publishing

    try:
        projects = publishing.changed_projects(Path.cwd(), base)
    except publishing.PublishError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(json.dumps(projects) if as_json else "\n".join(projects))


def main() -> None:
    """Console entry point."""
    cli()


if __name__ == "__main__":
    main()
