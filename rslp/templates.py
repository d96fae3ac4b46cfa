"""The template variables a model.yaml may use, and their values in a run.

rslearn substitutes ``${NAME}`` in model.yaml from the environment. The reference runner
exports a fixed set of names that its projects' model.yaml files use; this runner sets
the same names, so those files parse unchanged:

=========================== ===============================================================
``DATASET_PATH``            the run's scratch dataset (always; a set value is replaced)
``TRAINER_DATA_PATH``       ``<scratch>/trainer``: Lightning's checkpoints and state
``EXTRA_FILES_PATH``        the project's ``extra_model_files/`` if present, else the
                            project directory
``NUM_WORKERS``             data loader workers: ``0`` (partitions already run in
                            parallel; a set value is kept)
``PREDICTION_OUTPUT_LAYER`` ``output`` (the reference's output layer name; a set value is
                            kept)
``WANDB_PROJECT/NAME/ENTITY`` empty (predict runs without a logger; set values are kept)
=========================== ===============================================================
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATASET_PATH = "DATASET_PATH"
DEFAULT_OUTPUT_LAYER = "output"
EXTRA_FILES_DIR = "extra_model_files"
TEMPLATE_VARS = (
    "DATASET_PATH",
    "EXTRA_FILES_PATH",
    "TRAINER_DATA_PATH",
    "NUM_WORKERS",
    "PREDICTION_OUTPUT_LAYER",
    "WANDB_PROJECT",
    "WANDB_NAME",
    "WANDB_ENTITY",
)
# Set by the run whatever the environment says: they name the run's own directories.
_FORCED = ("DATASET_PATH", "TRAINER_DATA_PATH")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_values(project_dir: Path, dataset: Path, trainer_dir: Path) -> dict[str, str]:
    """The template variables' values for a run (set environment values win, see above)."""
    extra = project_dir / EXTRA_FILES_DIR
    values = {
        "DATASET_PATH": str(dataset),
        "EXTRA_FILES_PATH": str(extra if extra.is_dir() else project_dir),
        "TRAINER_DATA_PATH": str(trainer_dir),
        "NUM_WORKERS": "0",
        "PREDICTION_OUTPUT_LAYER": DEFAULT_OUTPUT_LAYER,
        "WANDB_PROJECT": "",
        "WANDB_NAME": "",
        "WANDB_ENTITY": "",
    }
    return {
        k: v if k in _FORCED or os.environ.get(k) is None else os.environ[k]
        for k, v in values.items()
    }


def expand(value: Any, values: dict[str, str]) -> Any:
    """``value`` with ``${NAME}`` of the given names substituted in every string in it."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: expand(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, values) for v in value]
    return value


def output_layer_name(value: Any) -> Any:
    """A writer's ``output_layer`` with ``${PREDICTION_OUTPUT_LAYER}`` resolved as a run would."""
    names = {"PREDICTION_OUTPUT_LAYER": os.environ.get("PREDICTION_OUTPUT_LAYER") or "output"}
    return expand(value, names)


@contextlib.contextmanager
def template_env(values: dict[str, str]) -> Iterator[None]:
    """Set the template variables in the environment for the duration of the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
