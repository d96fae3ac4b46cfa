"""Preflight: every check a run can make before it builds a window or reads any data.

``esrunner run``, ``esrunner plan`` and each :class:`~rslp.espredict_runner.EsPredictRunner`
step call :func:`preflight` first. It runs :data:`~rslp.checks.rules.PREFLIGHT_RULES` (the
same rules ``esbuild validate`` runs) on the run's files, with data directories required, and
raises one :class:`PreflightError` listing every error: a broken config fails in seconds,
naming file, line and key path, and leaves nothing in scratch. It runs in two passes: the
first imports none of the project's classes (it reads their modules' sources), so an error
there is reported in about a second; only a project without one pays for the imports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rslp import formats
from rslp.checks import verdicts
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import DEFAULT_MAX_WINDOWS, ProjectDocs
from rslp.checks.rules import IMPORTING_RULES, QUICK_RULES, Rule, run_rules
from rslp.errors import ProjectError
from rslp.project import ProjectFiles

if TYPE_CHECKING:
    from rslp.finetune.context import FinetuneFiles

logger = logging.getLogger(__name__)


class PreflightError(ProjectError):
    """The project's files have errors; each diagnostic is one line of the message.

    Args:
        diagnostics: the errors (at least one).
    """

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        first = diagnostics[0]
        super().__init__(first.file, first.message, first.key, first.hint)
        self.diagnostics = diagnostics
        self._init_args = (diagnostics,)
        self.args = ("\n".join(d.text() for d in diagnostics),)

    def __str__(self) -> str:
        return str(self.args[0])


def preflight_finetune(files: FinetuneFiles) -> list[Diagnostic]:
    """Check a fine-tune's files (its project directory's, as ``esbuild validate`` does).

    The fine-tune rules, and the run's rules that concern what a fit reads (dataset.json,
    model.yaml and their agreement). Returns the warnings.

    Raises:
        PreflightError: listing every error found.
    """
    from rslp.checks.rules import FINETUNE_RULES
    from rslp.checks.rules.schema import check_schemas
    from rslp.checks.rules.semantics import check_dataset_semantics, check_model_inputs

    project, _ = ProjectDocs.from_finetune(files)
    rules = [check_schemas, check_dataset_semantics, check_model_inputs, *FINETUNE_RULES]
    found = run_rules(project, rules)
    # of olmoearth_run.yaml, only window_prep concerns a fine-tune
    return _raise_or_warn([d for d in found if not _other_section(d, "window_prep")])


def _other_section(d: Diagnostic, section: str) -> bool:
    """Whether ``d`` is about olmoearth_run.yaml outside ``section`` (or it as a whole)."""
    return formats.is_run_config(d.file) and not _in(d, section)


def preflight(
    files: ProjectFiles,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    passed_quick: Callable[[], None] | None = None,
    import_classes: bool = True,
) -> list[Diagnostic]:
    """Check a run's files; returns the warnings.

    Args:
        files: the run's files.
        max_windows: the most windows the plan may make.
        passed_quick: called when the first pass found no error, before the classes are
            imported (e.g. to start worker processes: they import the same, in parallel).
        import_classes: run the second pass, which imports the project's classes and binds
            their arguments (a model's import torch: seconds, and hundreds of MiB); a plan
            builds no model, so ``esrunner plan`` leaves it to the run.

    Raises:
        PreflightError: listing every error found.
    """
    project, _ = ProjectDocs.from_files(files, max_windows)
    watch = verdicts.ImportPass(project)  # what the checks import from here on
    found = _run(project, QUICK_RULES)  # a broken project is refused before imports
    if passed_quick is not None and not _errors(found):
        passed_quick()
    if import_classes and not _errors(found):
        key = verdicts.verdict_key(project)
        if not verdicts.remembered(key):  # this node has not checked the same code before
            found = _run(project, IMPORTING_RULES)
            if not _errors(found):
                watch.remember(key)
    return _raise_or_warn(found)


def _run(project: ProjectDocs, rules: list[Rule]) -> list[Diagnostic]:
    """The rules' findings, but window_prep's: it is the fine-tune's, a run does not need it."""
    return [
        d
        for d in run_rules(project, rules)
        if not (formats.is_run_config(d.file) and _in(d, "window_prep"))
    ]


def _errors(found: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in found)


def _in(d: Diagnostic, section: str) -> bool:
    key = d.key or ""
    return key == section or key.startswith((section + ".", section + "["))


def _raise_or_warn(found: list[Diagnostic]) -> list[Diagnostic]:
    errors = [d for d in found if d.severity == "error"]
    if errors:
        raise PreflightError(errors)
    warnings = [d for d in found if d.severity != "error"]
    for d in warnings:
        logger.warning("%s", d.text())
    return warnings
