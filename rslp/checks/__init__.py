"""Checks of a project's files, shared by ``esbuild validate`` and the run's preflight.

- :mod:`~rslp.checks.documents`: YAML/JSON parsed with the line of every key.
- :mod:`~rslp.checks.diagnostics`: one finding (file, line, key path, message, hint).
- :mod:`~rslp.checks.project`: the parsed project every rule reads.
- :mod:`~rslp.checks.rules`: the rules; :data:`~rslp.checks.rules.PREFLIGHT_RULES` run
  before every run, ``esbuild validate`` adds its build-only and slow ones.
- :mod:`~rslp.checks.preflight`: the runner's front door.
- :mod:`~rslp.checks.schema`: the JSON Schemas, generated from the config models.
"""
