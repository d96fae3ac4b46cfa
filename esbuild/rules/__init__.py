"""Validation rules: each takes the parsed project and returns diagnostics.

The rules run in order and all of them run, so one call reports every problem at once; a
rule skips a file that did not parse (its syntax error is already reported).
"""

from __future__ import annotations

from collections.abc import Callable

from esbuild.rules.classes import check_class_paths
from esbuild.rules.context import ProjectDocs
from esbuild.rules.layers import check_local_files_bands, check_output_layer
from esbuild.rules.model import check_checkpoint, check_lightning_parse, check_placeholders
from esbuild.rules.request import check_requests
from esbuild.rules.requirements import check_requirements
from esbuild.rules.schema import check_schemas
from esbuild.rules.semantics import (
    check_dataset_semantics,
    check_model_inputs,
    check_postprocessor_types,
    check_strategy_semantics,
)

Rule = Callable[[ProjectDocs], list]

RULES: list[Rule] = [
    check_schemas,
    check_dataset_semantics,
    check_class_paths,
    check_strategy_semantics,
    check_postprocessor_types,
    check_model_inputs,
    check_placeholders,
    check_output_layer,
    check_local_files_bands,
    check_requests,
    check_requirements,
    check_lightning_parse,
    check_checkpoint,
]

__all__ = ["RULES", "ProjectDocs"]
