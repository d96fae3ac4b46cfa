"""JSON Schemas of the project files, generated from the pydantic models that load them.

``dataset.json`` uses rslearn's own ``DatasetConfig`` model; the strategy files, model.yaml
and the prediction request use :mod:`rslp.config`. The generated schemas are shipped in
``rslp/checks/schemas/`` and validation runs them with ``jsonschema`` (Draft 2020-12), so CI checks
exactly what an editor shows.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://esrunner.invalid/schemas/"

# file name in a project -> schema file name
SCHEMA_FILES = {
    "dataset.json": "dataset.schema.json",
    "model.yaml": "model.schema.json",
    "partition_strategies.yaml": "partition_strategies.schema.json",
    "postprocessing_strategies.yaml": "postprocessing_strategies.schema.json",
    "prediction": "prediction.schema.json",
    "olmoearth_run.yaml": "olmoearth_run.schema.json",
    "finetune_strategies.yaml": "finetune_strategies.schema.json",
    "annotation_task_features.geojson": "annotation_tasks.schema.json",
    "annotation_features.geojson": "annotations.schema.json",
}


def _models() -> dict[str, type[BaseModel]]:
    from rslearn.config import DatasetConfig

    from rslp.config import (
        Annotations,
        AnnotationTasks,
        FinetuneConfig,
        ModelConfigFile,
        PartitionStrategiesConfig,
        PostprocessingStrategiesConfig,
        PredictionRequest,
        ReferenceRunConfig,
    )
    from rslp.formats.unified.schema import UnifiedConfig

    return {
        "dataset.schema.json": DatasetConfig,
        "model.schema.json": ModelConfigFile,
        "partition_strategies.schema.json": PartitionStrategiesConfig,
        "postprocessing_strategies.schema.json": PostprocessingStrategiesConfig,
        "prediction.schema.json": PredictionRequest,
        "olmoearth_run.schema.json": ReferenceRunConfig,
        "finetune_strategies.schema.json": FinetuneConfig,
        "annotation_tasks.schema.json": AnnotationTasks,
        "annotations.schema.json": Annotations,
        # for editors; validation of the unified file uses its models (rslp/formats/unified)
        "olmoearth_config.schema.json": UnifiedConfig,
    }


def _accept_legacy_data_sources(schema: dict[str, Any]) -> None:
    """Allow rslearn's legacy ``{"name": ..., <args>}`` data source form.

    rslearn converts it with a ``mode="before"`` validator, which pydantic cannot express
    in a schema.
    """
    defs = schema.get("$defs", {})
    if "DataSourceConfig" in defs:
        legacy = {
            "type": "object",
            "description": "Deprecated rslearn form: the class path as 'name', arguments inline.",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        }
        defs["DataSourceConfigOrLegacy"] = {"anyOf": [{"$ref": "#/$defs/DataSourceConfig"}, legacy]}
        text = json.dumps(schema).replace(
            '"$ref": "#/$defs/DataSourceConfig"}, {"type": "null"}',
            '"$ref": "#/$defs/DataSourceConfigOrLegacy"}, {"type": "null"}',
        )
        schema.clear()
        schema.update(json.loads(text))


def generate() -> dict[str, dict[str, Any]]:
    """Every schema, generated from its model (input side: what a file may contain)."""
    out = {}
    for name, model in _models().items():
        schema = model.model_json_schema(mode="validation")
        if name == "dataset.schema.json":
            _accept_legacy_data_sources(schema)
        out[name] = {"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID_BASE + name, **schema}
    return out


def dumps(schema: dict[str, Any]) -> str:
    """The canonical text of a schema file."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def write(out_dir: Path) -> list[Path]:
    """Write every schema into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generate().items():
        p = out_dir / name
        p.write_text(dumps(schema))
        paths.append(p)
    return paths


@cache
def shipped(name: str) -> dict[str, Any]:
    """A schema as shipped in the package."""
    text = resources.files("rslp.checks").joinpath("schemas", name).read_text()
    return dict(json.loads(text))
