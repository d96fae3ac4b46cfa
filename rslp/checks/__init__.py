"""Checks of a project's files, shared by ``esbuild validate`` and the run's preflight.

- :mod:`~rslp.checks.documents`: YAML/JSON parsed with the line of every key.
- :mod:`~rslp.checks.diagnostics`: one finding (file, line, key path, message, hint).
- :mod:`~rslp.checks.project`: the parsed project every rule reads.
- :mod:`~rslp.checks.rules`: the rules; :data:`~rslp.checks.rules.PREFLIGHT_RULES` run
  before every run, ``esbuild validate`` adds its build-only and slow ones.
- :mod:`~rslp.checks.preflight`: the runner's front door.
- :mod:`~rslp.checks.schema`: the JSON Schemas, generated from the config models.
"""

from __future__ import annotations

from pathlib import Path

from rslp.checks.diagnostics import Diagnostic


def check_project(
    root: Path,
    deep: bool = False,
    finetune: bool = False,
    run_config: str | None = None,
    model_config: str | None = None,
) -> list[Diagnostic]:
    """Every rule that depends on the environment, on a project directory, in this process.

    What ``esrunner check`` runs (inside a model image, that is the project's own
    environment): the preflight rules and the slow ones (LightningCLI parse; with ``deep``
    the checkpoint loaded into the model). ``esbuild validate`` adds the build-only rules.
    With ``finetune`` the fine-tune's annotation files are required (else only checked
    when present). ``run_config``/``model_config`` choose one model variant; without
    them every variant of the directory is checked.

    Returns:
        diagnostics in file then line order; nothing is written into ``root``.
    """
    from rslp.checks.rules import (
        FINETUNE_RULES,
        PREFLIGHT_RULES,
        SLOW_RULES,
        check_variants,
        run_rules,
    )

    rules = [*PREFLIGHT_RULES, *FINETUNE_RULES, *SLOW_RULES]
    return check_variants(
        root,
        lambda p: run_rules(p, rules),
        run_config,
        model_config,
        finetune=finetune,
        deep=deep,
    )
