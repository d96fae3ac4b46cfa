"""Check rules: each takes the parsed project and returns diagnostics.

The rules run in order and all of them run, so one call reports every problem at once; a
rule skips a file that did not parse (its syntax error is already reported).

:data:`PREFLIGHT_RULES` are the checks a run makes before it builds any window (seconds);
``esbuild validate`` runs them too, plus its build-only and slow rules
(:func:`check_lightning_parse`, :func:`check_checkpoint_fits`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs
from rslp.checks.rules.bounds import check_plan_bounds
from rslp.checks.rules.classes import check_class_paths, check_class_sources
from rslp.checks.rules.encoders import check_encoder_sources
from rslp.checks.rules.finetune import check_finetune
from rslp.checks.rules.layers import check_local_files_bands, check_output_layer
from rslp.checks.rules.model import (
    check_checkpoint,
    check_checkpoint_fits,
    check_lightning_parse,
    check_placeholders,
    check_writer_path,
)
from rslp.checks.rules.request import check_requests
from rslp.checks.rules.results import check_reference_differences, check_results_config
from rslp.checks.rules.schema import check_schemas
from rslp.checks.rules.semantics import (
    check_dataset_semantics,
    check_model_inputs,
    check_postprocessor_types,
    check_strategy_semantics,
)
from rslp.checks.rules.values import check_legend_entries, check_nodata_values

Rule = Callable[[ProjectDocs], list[Diagnostic]]

# Preflight, first pass: nothing of the project's is imported (its modules' sources are
# read instead), so a broken project is refused in about a second.
QUICK_RULES: list[Rule] = [
    check_schemas,
    check_dataset_semantics,
    check_class_sources,
    check_encoder_sources,
    check_strategy_semantics,
    check_postprocessor_types,
    check_model_inputs,
    check_placeholders,
    check_writer_path,
    check_output_layer,
    check_results_config,
    check_legend_entries,
    check_nodata_values,
    check_reference_differences,
    check_local_files_bands,
    check_requests,
    check_plan_bounds,
    check_checkpoint,
]

# Second pass, when the first found no error: the classes imported (a model's import torch
# and Lightning: seconds) and each one's init_args bound to its constructor.
IMPORTING_RULES: list[Rule] = [check_class_paths]

PREFLIGHT_RULES: list[Rule] = QUICK_RULES + IMPORTING_RULES


# A project's fine-tune files (its prediction runs do not need them).
FINETUNE_RULES: list[Rule] = [check_finetune]

# The slow ones, after the rest: a real rslearn parse of model.yaml, the checkpoint loaded.
SLOW_RULES: list[Rule] = [check_lightning_parse, check_checkpoint_fits]


def run_rules(project: ProjectDocs, rules: list[Rule]) -> list[Diagnostic]:
    """Run ``rules`` in order, each seeing what the earlier ones found.

    Returns:
        every diagnostic (those found while loading included), in file then line order.
    """
    for rule in rules:
        project.found += rule(project)
    return sorted((project.shown(d) for d in project.found), key=Diagnostic.order)


def check_variants(
    root: Path,
    check: Callable[[ProjectDocs], list[Diagnostic]],
    run_config: str | None = None,
    model_config: str | None = None,
    **options: Any,
) -> list[Diagnostic]:
    """Check a project directory: the variant chosen, else every variant of it.

    A finding in a file the variants share (dataset.json, a request) is reported once.

    Args:
        root: the project directory.
        check: what to run on each variant's parsed project, e.g.
            ``lambda p: run_rules(p, rules)``.
        run_config: ``--run-config`` (:func:`rslp.variants.choose`).
        model_config: ``--model-config``.
        options: :meth:`ProjectDocs.from_dir` arguments (``finetune``, ``deep``, ...).

    Returns:
        diagnostics in file then line order.
    """
    from rslp.checks.project import variants_of
    from rslp.errors import ProjectError

    root = root.resolve()
    if not root.is_dir():
        return [Diagnostic(root, "project directory does not exist", rule="files")]
    try:
        variants = variants_of(root, run_config, model_config)
    except ProjectError as e:
        return [Diagnostic(e.path, e.message, hint=e.hint, rule="files")]
    seen: dict[tuple[object, ...], Diagnostic] = {}
    for variant in variants:
        project, _ = ProjectDocs.from_dir(root, variant=variant, **options)
        for d in check(project):
            seen.setdefault((d.file, d.line, d.key, d.message, d.severity), d)
    return sorted(seen.values(), key=Diagnostic.order)


__all__ = [
    "check_variants",
    "FINETUNE_RULES",
    "IMPORTING_RULES",
    "PREFLIGHT_RULES",
    "QUICK_RULES",
    "SLOW_RULES",
    "ProjectDocs",
    "Rule",
    "check_checkpoint_fits",
    "check_lightning_parse",
    "run_rules",
]
