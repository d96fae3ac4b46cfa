"""What every step needs: the project's files, its loaded configs and the scratch dir."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from rslp import formats
from rslp.common.partitioners.interface import OutputProjection, PartitionInterface
from rslp.common.postprocessing.interface import OutputLayer, PostprocessInterface, class_at
from rslp.common.postprocessing.legend import Legend
from rslp.config import PartitionStrategiesConfig, PostprocessingStrategiesConfig, StrategyConfig
from rslp.errors import ProjectError
from rslp.plugins import instantiate
from rslp.project import (
    ProjectFiles,
    load_dataset_config,
    load_model_config,
    load_partition_strategies,
    load_postprocessing_strategies,
)
from rslp.runner.device import InferenceSettings
from rslp.runner.scratch import Scratch
from rslp.templates import output_layer_name

WRITER_CLASS = "RslearnWriter"
# Writers the runner points at its dataset: rslearn's, and the multi-head one.
WRITER_CLASSES = (WRITER_CLASS, "MultiFieldWriter")


def is_writer(class_path: object) -> bool:
    """Whether a callback's class_path is a prediction writer the runner knows."""
    return str(class_path).rsplit(".", 1)[-1] in WRITER_CLASSES


DEFAULT_NODATA = {"uint8": 255, "uint16": 65535, "uint32": 4294967295, "int8": -128}


def find_writer(model_config: Any) -> tuple[int, dict[str, Any]] | None:
    """The RslearnWriter in model.yaml's ``trainer.callbacks``: (its index, the callback).

    Copes with any parsed value (a broken model.yaml gives None).
    """
    trainer = model_config.get("trainer") if isinstance(model_config, dict) else None
    callbacks = trainer.get("callbacks") if isinstance(trainer, dict) else None
    for i, cb in enumerate(callbacks if isinstance(callbacks, list) else []):
        if isinstance(cb, dict) and is_writer(cb.get("class_path", "")):
            return i, cb
    return None


def writer_layer(model_config: Any, layers: Any) -> tuple[Any, dict[str, Any] | None]:
    """The writer's ``output_layer`` (template resolved) and its dataset.json layer, or None.

    Copes with any parsed values (a broken file gives ``(None, None)`` or no layer).
    """
    found = find_writer(model_config)
    args = found[1].get("init_args") if found else None
    name = output_layer_name(args.get("output_layer")) if isinstance(args, dict) else None
    layer = layers.get(name) if isinstance(layers, dict) and isinstance(name, str) else None
    return name, layer if isinstance(layer, dict) else None


@dataclass
class RunContext:
    """The inputs of a run, loaded lazily so a step only parses what it uses.

    Args:
        files: the project's files.
        scratch: the scratch directory.
        inference: the device and batch size asked for (``--device``, ``--batch-size``).
    """

    files: ProjectFiles
    scratch: Scratch
    inference: InferenceSettings = field(default_factory=InferenceSettings)

    @cached_property
    def partition_config(self) -> PartitionStrategiesConfig:
        """``partition_strategies.yaml``."""
        return load_partition_strategies(self.files)

    @cached_property
    def postprocessing_config(self) -> PostprocessingStrategiesConfig:
        """``postprocessing_strategies.yaml``."""
        return load_postprocessing_strategies(self.files)

    def _strategy(self, cfg: StrategyConfig, base: type, role: str, key: str) -> Any:
        source = (
            self.files.partition_strategies_yaml
            if role == formats.PARTITION_ROLE
            else self.files.postprocessing_strategies_yaml
        )
        return instantiate(
            cfg.class_path, cfg.init_args, base, source=source, key=self.files.key(role, key)
        )

    @cached_property
    def large_partitioner(self) -> PartitionInterface:
        """The ``strategy_large`` partitioner."""
        return self._strategy(
            self.partition_config.strategy_large,
            PartitionInterface,
            formats.PARTITION_ROLE,
            "strategy_large",
        )

    @cached_property
    def small_partitioner(self) -> PartitionInterface:
        """The ``strategy_small`` partitioner."""
        return self._strategy(
            self.partition_config.strategy_small,
            PartitionInterface,
            formats.PARTITION_ROLE,
            "strategy_small",
        )

    @property
    def projection(self) -> OutputProjection:
        """Where windows live: the window-level partitioner's own, else the project's."""
        p = self.partition_config.projection
        return self.small_partitioner.window_projection(
            OutputProjection(crs=p.crs, resolution=p.resolution)
        )

    def postprocessor(self, key: str) -> PostprocessInterface:
        """The postprocessor for a stage key (``strategy_small|medium|large``)."""
        cfg = getattr(self.postprocessing_config, key)
        return self._strategy(cfg, PostprocessInterface, formats.POSTPROCESSING_ROLE, key)

    @cached_property
    def dataset_config(self) -> dict[str, Any]:
        """``dataset.json`` as parsed JSON (validated by rslearn when the dataset opens)."""
        return load_dataset_config(self.files.dataset_json)

    @cached_property
    def model_config(self) -> dict[str, Any]:
        """``model.yaml`` as parsed YAML."""
        return load_model_config(self.files.model_yaml)

    def writer_callback(self) -> dict[str, Any]:
        """The RslearnWriter callback of model.yaml's trainer."""
        found = find_writer(self.model_config)
        if found is not None:
            return found[1]
        raise ProjectError(
            self.files.model_yaml,
            "no rslearn.train.prediction_writer.RslearnWriter in trainer.callbacks",
            "trainer.callbacks",
            hint="the writer's output_layer names the dataset.json layer predictions go to",
        )

    @cached_property
    def legend(self) -> Legend | None:
        """What the results mean, from ``inference_results_config`` (None when not given)."""
        return Legend.from_results_config(self.postprocessing_config.inference_results_config)

    @cached_property
    def output_layer(self) -> OutputLayer:
        """The layer the model writes predictions to (dataset.json), with its legend.

        Class names come from dataset.json, else from the legend's labels.
        """
        self.writer_callback()  # names model.yaml when there is no writer
        name, layer = writer_layer(self.model_config, self.dataset_config["layers"])
        if layer is None:
            raise ProjectError(
                self.files.dataset_json,
                f"model.yaml's RslearnWriter writes layer {name!r}, which is not defined",
                "layers",
            )
        ltype = layer.get("type")
        legend = self.legend
        legend_names = legend.class_names() if legend is not None else None
        if ltype == "vector":
            return OutputLayer(
                name=name,
                type="vector",
                class_names=layer.get("class_names") or legend_names,
                legend=legend,
            )
        band_sets = layer.get("band_sets") or []
        if not band_sets:
            raise ProjectError(
                self.files.dataset_json, "raster layer has no band_sets", f"layers.{name}"
            )
        bs = band_sets[0]
        dtype = str(bs.get("dtype", "float32")).lower()
        class_names = layer.get("class_names") or legend_names
        nodata = bs.get("nodata_value")
        if nodata is None:
            nodata = DEFAULT_NODATA.get(dtype, -1 if "int" in dtype else float("nan"))
        own = layer.get("class_names")
        hidden = None if np.isnan(nodata) else class_at(nodata, own, None if own else legend)
        if hidden is not None:
            raise ProjectError(
                self.files.dataset_json,
                f"nodata_value {nodata} is a valid class id ({hidden!r})",
                f"layers.{name}.band_sets[0].nodata_value",
            )
        fields = Legend.fields_of(self.postprocessing_config.inference_results_config)
        return OutputLayer(
            name=name,
            type="raster",
            bands=list(bs.get("bands") or []),
            dtype=dtype,
            nodata=nodata,
            class_names=class_names,
            legend=legend,
            fields=fields if len(fields) > 1 else [],
        )
