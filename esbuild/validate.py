"""Validate a project directory: its files against the schemas, then cross-file rules.

The rules are the runner's own (:mod:`rslp.checks`), so a project that validates passes
the run's preflight; validation adds what only a build needs (the requirements policy and
their conflicts with the base) and the slow checks (a real rslearn parse of model.yaml, and
with ``deep`` the checkpoint loaded into it).

Where the checks run: on the host, every rule runs, and a module the project's own
requirements provide is a notice (:mod:`esbuild.environment`); with an image (``--image``,
and always in ``esbuild build``), every rule of :mod:`rslp.checks` runs inside the image,
the project's real environment, and only the build-only rules run on the host.
"""

from __future__ import annotations

from pathlib import Path

from esbuild.environment import check_in_image, notice_missing_imports
from esbuild.lock import check_requirement_conflicts
from esbuild.requirements import check_requirements
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs
from rslp.checks.rules import (
    FINETUNE_RULES,
    PREFLIGHT_RULES,
    SLOW_RULES,
    Rule,
    check_variants,
    run_rules,
)

BUILD_RULES: list[Rule] = [check_requirements, check_requirement_conflicts]


def validate_project(
    root: Path,
    deep: bool = False,
    allow_sources: bool = False,
    require_imports: bool = False,
    image: str | None = None,
    finetune: bool = False,
    run_config: str | None = None,
    model_config: str | None = None,
) -> list[Diagnostic]:
    """Every problem of a project directory, all at once (errors, warnings, notices).

    Args:
        root: the project directory.
        deep: also load the checkpoint into the model built from model.yaml.
        allow_sources: allow requirements options that change where packages come from.
        require_imports: a module missing here is an error even when the project's
            requirements may provide it (host only).
        image: run the environment's checks inside this image instead of here.
        finetune: check the fine-tune's annotation files even when they are absent
            (they are required only where fine-tuning runs).
        run_config: the model variant's run config (:func:`rslp.variants.choose`);
            without it and ``model_config`` every variant of the directory is checked.
        model_config: the model variant's model config.

    Returns:
        diagnostics, in file then line order. Nothing is written into ``root``.

    Raises:
        BuildError: with ``image``, when the check cannot run inside it.
    """
    options = {"finetune": finetune, "deep": deep, "allow_sources": allow_sources}
    if image is not None:

        def inside(project: ProjectDocs) -> list[Diagnostic]:
            project.found = []  # the image re-reports what loading found
            opts = project.variant.options() if project.variant is not None else []
            return run_rules(project, BUILD_RULES) + check_in_image(
                image, project.root, deep, finetune, opts
            )

        return check_variants(root, inside, run_config, model_config, **options)
    notice = [] if require_imports else [notice_missing_imports]
    rules = [*PREFLIGHT_RULES, *FINETUNE_RULES, *BUILD_RULES, *notice, *SLOW_RULES]
    return check_variants(root, lambda p: run_rules(p, rules), run_config, model_config, **options)
