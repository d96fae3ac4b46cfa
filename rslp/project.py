"""Find and load a project's files into config models.

A project directory holds ``dataset.json``, ``model.yaml``, ``partition_strategies.yaml``,
``postprocessing_strategies.yaml``, optionally ``checkpoint.ckpt`` and
``requirements.txt``, and prediction requests in ``prediction/`` (or the seed sample's
``prediction_requests/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rslp.config import PartitionStrategiesConfig, PostprocessingStrategiesConfig
from rslp.errors import ProjectError

M = TypeVar("M", bound=BaseModel)
REQUEST_DIRS = ("prediction", "prediction_requests")


@dataclass(frozen=True)
class ProjectFiles:
    """The absolute paths of one project's files.

    Attributes:
        model_yaml: rslearn/Lightning model config.
        dataset_json: rslearn dataset config.
        partition_strategies_yaml: partitioning strategies.
        postprocessing_strategies_yaml: postprocessing strategies.
        request_geojson: the prediction request.
        checkpoint: model weights, or None.
    """

    model_yaml: Path
    dataset_json: Path
    partition_strategies_yaml: Path
    postprocessing_strategies_yaml: Path
    request_geojson: Path
    checkpoint: Path | None = None

    @property
    def project_dir(self) -> Path:
        """The directory relative paths in dataset.json are resolved against."""
        return self.dataset_json.parent

    @staticmethod
    def from_dir(project_dir: Path, request: Path | None = None) -> ProjectFiles:
        """Locate the files of a project directory.

        Args:
            project_dir: the project directory.
            request: a request file; default the single ``*.geojson`` in ``prediction/``
                or ``prediction_requests/`` (the first by name when there are several).

        Raises:
            ProjectError: naming the missing file.
        """
        d = project_dir.resolve()
        if not d.is_dir():
            raise ProjectError(d, "project directory does not exist")
        for name in (
            "model.yaml",
            "dataset.json",
            "partition_strategies.yaml",
            "postprocessing_strategies.yaml",
        ):
            if not (d / name).is_file():
                raise ProjectError(d / name, "required project file is missing")
        if request is None:
            found = sorted(p for sub in REQUEST_DIRS for p in (d / sub).glob("*.geojson"))
            if not found:
                raise ProjectError(
                    d / "prediction", "no *.geojson request in prediction/ or prediction_requests/"
                )
            request = found[0]
        ckpt = d / "checkpoint.ckpt"
        return ProjectFiles(
            model_yaml=d / "model.yaml",
            dataset_json=d / "dataset.json",
            partition_strategies_yaml=d / "partition_strategies.yaml",
            postprocessing_strategies_yaml=d / "postprocessing_strategies.yaml",
            request_geojson=request.resolve(),
            checkpoint=ckpt if ckpt.exists() else None,
        )


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, naming the file and line on a syntax error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ProjectError(path, "file does not exist") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ProjectError(path, f"not valid YAML{where}: {e}") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file, naming the file and line on a syntax error."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(path, "file does not exist") from None
    except json.JSONDecodeError as e:
        raise ProjectError(path, f"not valid JSON at line {e.lineno}: {e.msg}") from None


def load_model(path: Path, model: type[M]) -> M:
    """Load a YAML file into a pydantic model, naming the key path of the first error."""
    data = read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ProjectError(path, f"{err['msg']} ({len(e.errors())} error(s))", key) from None


def load_partition_strategies(path: Path) -> PartitionStrategiesConfig:
    """Load ``partition_strategies.yaml``."""
    return load_model(path, PartitionStrategiesConfig)


def load_postprocessing_strategies(path: Path) -> PostprocessingStrategiesConfig:
    """Load ``postprocessing_strategies.yaml``."""
    return load_model(path, PostprocessingStrategiesConfig)
