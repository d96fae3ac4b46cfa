"""What every fine-tune step reads: the project's files, its fine-tune config, the scratch dir."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rslp import formats
from rslp.config import FinetuneConfig, StrategyConfig
from rslp.errors import ProjectError
from rslp.finetune.annotations import ANNOTATIONS_DIR, FEATURES_FILE, TASKS_FILE
from rslp.finetune.preparers import LabeledWindowPreparer
from rslp.finetune.samplers import NoopSampler, SamplerInterface
from rslp.finetune.splitters import DataSplitterInterface
from rslp.plugins import instantiate
from rslp.project import load_dataset_config, load_model, load_model_config, read_yaml
from rslp.runner.scratch import Scratch
from rslp.variants import Variant, choose

FINETUNE_DIR = "finetune"


@dataclass(frozen=True)
class FinetuneFiles:
    """The files a fine-tune reads.

    Attributes:
        model_yaml: the rslearn model config.
        dataset_json: the rslearn dataset config (its label layer receives the labels).
        finetune_yaml: ``finetune_strategies.yaml``, or ``olmoearth_run.yaml`` (whose
            ``window_prep`` plays that role).
        tasks: ``annotations/annotation_task_features.geojson``.
        annotations: ``annotations/annotation_features.geojson``.
        checkpoint: the weights the fit starts from (None: from scratch).
    """

    model_yaml: Path
    dataset_json: Path
    finetune_yaml: Path
    tasks: Path
    annotations: Path
    checkpoint: Path | None = None

    @property
    def project_dir(self) -> Path:
        """The project directory (where dataset.json lives)."""
        return self.dataset_json.parent

    @property
    def reference(self) -> bool:
        """Whether the config is ``window_prep`` of ``olmoearth_run.yaml``."""
        return formats.is_run_config(self.finetune_yaml)

    def key(self, key: str) -> str:
        """A key path of finetune_strategies.yaml as written in the config file."""
        return formats.real_key_str(formats.FINETUNE_ROLE, key) if self.reference else key

    @staticmethod
    def from_dir(project_dir: Path, variant: Variant | None = None) -> FinetuneFiles:
        """A project directory's fine-tune files.

        Args:
            project_dir: the project directory.
            variant: the model variant to fine-tune (default: the directory's only or
                default one, :func:`rslp.variants.choose`).

        Raises:
            ProjectError: naming the missing file, or the variants to choose from.
        """
        d = project_dir.resolve()
        if not d.is_dir():
            raise ProjectError(d, "project directory does not exist")
        variant = variant or choose(d)
        if formats.is_unified_config(variant.model_config):
            raise ProjectError(
                variant.model_config,
                "fine-tuning a unified project (its training and labeled_data_prep "
                "sections) is not supported yet",
                "training",
                hint="esrunner convert DIR --to reference writes the model's files; add "
                "finetune_strategies.yaml and annotations/ there to fine-tune",
            )
        cfg = d / formats.FINETUNE_ROLE
        run = variant.run_config or d / formats.RUN_YAML
        both = cfg.is_file() and run.is_file()
        if both and formats.has_section(read_yaml(run), formats.FINETUNE_ROLE):
            raise ProjectError(
                cfg,
                f"and window_prep in {run.name} both configure the fine-tune",
                hint="keep one of them",
            )
        if not cfg.is_file():
            if run.is_file() and formats.has_section(read_yaml(run), formats.FINETUNE_ROLE):
                cfg = run
            else:
                raise ProjectError(
                    cfg,
                    "required for fine-tuning: the file is missing",
                    hint=f"or a window_prep section in {run.name}",
                )
        for path in (variant.model_config, d / "dataset.json"):
            if not path.is_file():
                raise ProjectError(path, "required project file is missing")
        ann = d / ANNOTATIONS_DIR
        for name in (TASKS_FILE, FEATURES_FILE):
            if not (ann / name).is_file():
                raise ProjectError(ann / name, "required annotation file is missing")
        ckpt = variant.checkpoint(d)
        return FinetuneFiles(
            model_yaml=variant.model_config,
            dataset_json=d / "dataset.json",
            finetune_yaml=cfg,
            tasks=ann / TASKS_FILE,
            annotations=ann / FEATURES_FILE,
            checkpoint=ckpt if ckpt.exists() else None,
        )


@dataclass
class FinetuneContext:
    """The inputs of a fine-tune, loaded lazily.

    Args:
        files: the fine-tune's files.
        scratch: ``SCRATCH/finetune`` (its ``dataset/`` is the training dataset).
        max_epochs: overrides the config's ``trainer.max_epochs``.
    """

    files: FinetuneFiles
    scratch: Scratch
    max_epochs: int | None = None

    @cached_property
    def config(self) -> FinetuneConfig:
        """The fine-tune config (``finetune_strategies.yaml`` or ``window_prep``)."""
        role = formats.FINETUNE_ROLE if self.files.reference else None
        return load_model(self.files.finetune_yaml, FinetuneConfig, role)

    @cached_property
    def dataset_config(self) -> dict[str, Any]:
        """``dataset.json`` as parsed JSON (validated by rslearn when the dataset opens)."""
        return load_dataset_config(self.files.dataset_json)

    @cached_property
    def model_config(self) -> dict[str, Any]:
        """``model.yaml`` as parsed YAML."""
        return load_model_config(self.files.model_yaml)

    def _strategy(self, cfg: StrategyConfig, base: type, key: str) -> Any:
        return instantiate(
            cfg.class_path,
            cfg.init_args,
            base,
            source=self.files.finetune_yaml,
            key=self.files.key(key),
        )

    @cached_property
    def sampler(self) -> SamplerInterface:
        """The sampler (every task when none is configured)."""
        cfg = self.config.sampler
        return NoopSampler() if cfg is None else self._strategy(cfg, SamplerInterface, "sampler")

    @cached_property
    def preparer(self) -> LabeledWindowPreparer:
        """The labeled window preparer."""
        return self._strategy(
            self.config.labeled_window_preparer, LabeledWindowPreparer, "labeled_window_preparer"
        )

    @cached_property
    def splitter(self) -> DataSplitterInterface:
        """The data splitter."""
        return self._strategy(self.config.data_splitter, DataSplitterInterface, "data_splitter")

    @property
    def label_layer(self) -> dict[str, Any]:
        """The label layer of dataset.json.

        Raises:
            ProjectError: when dataset.json has no such layer.
        """
        name = self.config.label_layer
        layer = self.dataset_config["layers"].get(name)
        if not isinstance(layer, dict):
            raise ProjectError(
                self.files.finetune_yaml,
                f"label_layer {name!r} is not a layer of dataset.json "
                f"(layers: {sorted(self.dataset_config['layers'])})",
                self.files.key("label_layer"),
            )
        return layer
