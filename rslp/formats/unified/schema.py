"""Pydantic models of the unified project file, ``olmoearth_config.yaml``.

One file describes the whole model: its inputs (``data.modalities``, ``data.temporality``),
its outputs (``data.output.fields``, one per head), the network (``model.encoder``,
``model.tasks``), how inputs are cut (``input_preprocessing``) and how a request is split
and combined (``prediction_requests``). :mod:`rslp.formats.unified.transpile` turns it
into the dataset config, model config and legend the other two formats write by hand.

Every model forbids unknown keys (an unknown key is one error naming it, never a silent
drop). The forms of ``config_version`` 0.1 to 0.13 are read alike: ``fields`` as a list of
named fields or a mapping name -> field; a framed temporality as lists
(``lookbehind_observations``) or as one observation with its offset
(``lookbehind_observation`` + ``lookbehind_offset_days``); tasks ``manual`` (rslearn layers
written out) or ``segmentation`` with a ``unet`` decoder.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

SUPPORTED_MINOR = range(1, 14)  # config_version 0.1.x ... 0.13.x
VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- data.temporality ----------------------------------------------------------------------


class RepeatingInterval(_Strict):
    """``num_periods`` mosaics of ``period_duration_days`` each (one per period).

    ``recovery_periods``: extra periods searched so that ``num_periods`` of them have
    imagery (the time range is ``num_periods + recovery_periods`` periods long).
    """

    name: Literal["repeating_interval"]
    num_periods: int = Field(ge=1, le=64)
    period_duration_days: int = Field(ge=1)
    recovery_periods: int = Field(default=0, ge=0)


class Sampled(_Strict):
    """``num_samples`` scenes within ``duration_days``."""

    name: Literal["sampled"]
    duration_days: int = Field(ge=1)
    num_samples: int = Field(ge=1, le=64)


Observation = Annotated[RepeatingInterval | Sampled, Field(discriminator="name")]


class FramedObservation(_Strict):
    """One observation window of a framed temporality, ``offset_days`` away from the time."""

    offset_days: int = Field(default=0, ge=0)
    observation: Observation


class FramedPointInTime(_Strict):
    """Observations before (lookbehind) and after (lookahead) each request's time."""

    name: Literal["framed_point_in_time"]
    lookbehind_observations: list[FramedObservation] | None = None
    lookahead_observations: list[FramedObservation] | None = None
    lookbehind_observation: Observation | None = None
    lookbehind_offset_days: int | None = Field(default=None, ge=0)
    lookahead_observation: Observation | None = None
    lookahead_offset_days: int | None = Field(default=None, ge=0)

    @field_validator("lookbehind_observations", "lookahead_observations")
    @classmethod
    def _not_empty(cls, v: list[FramedObservation] | None) -> list[FramedObservation] | None:
        if v is not None and not v:
            raise ValueError("the list is empty: give at least one observation")
        return v

    @model_validator(mode="after")
    def _one_form(self) -> FramedPointInTime:
        for side in ("lookbehind", "lookahead"):
            many = getattr(self, f"{side}_observations")
            one = getattr(self, f"{side}_observation")
            if many is not None and one is not None:
                raise ValueError(
                    f"give {side}_observations (a list) or {side}_observation, not both"
                )
            if getattr(self, f"{side}_offset_days") is not None and one is None:
                raise ValueError(f"{side}_offset_days needs {side}_observation")
        if not self.windows("lookbehind") and not self.windows("lookahead"):
            raise ValueError("a framed temporality needs a lookbehind or a lookahead observation")
        return self

    def windows(self, side: str) -> list[FramedObservation]:
        """The observation windows of one side, in the file's order (the list form)."""
        many = getattr(self, f"{side}_observations")
        if many is not None:
            return list(many)
        one = getattr(self, f"{side}_observation")
        if one is None:
            return []
        return [
            FramedObservation(
                offset_days=getattr(self, f"{side}_offset_days") or 0, observation=one
            )
        ]

    def is_list_form(self) -> bool:
        """Whether the file uses the lists (0.13: layers named ``..._lookbehind_<i>``)."""
        return self.lookbehind_observations is not None or self.lookahead_observations is not None


class Period(_Strict):
    """One observation starting at the request's start time."""

    name: Literal["period"]
    observation: Observation
    allowed_start_month_constraints: list[str] | None = None


class PointInTime(_Strict):
    """One scene within a window centred on the request's time."""

    name: Literal["point_in_time"]
    observation_window_seconds: int = Field(ge=1)


Temporality = Annotated[FramedPointInTime | Period | PointInTime, Field(discriminator="name")]


# --- data.modalities -----------------------------------------------------------------------


class Sentinel2Modality(_Strict):
    """Sentinel-2 L2A (12 bands)."""

    space_mode: Literal["mosaic", "contains"]
    sort_by: Literal["cloud_cover"] = "cloud_cover"


class Sentinel1Modality(_Strict):
    """Sentinel-1 RTC (vv, vh)."""

    space_mode: Literal["mosaic", "contains"]
    orbit_direction: Literal["ascending_orbit", "descending_orbit"] = "ascending_orbit"


class Modalities(_Strict):
    """The model's inputs."""

    sentinel2_l2a: Sentinel2Modality | None = None
    sentinel1_rtc: Sentinel1Modality | None = None

    @model_validator(mode="after")
    def _some(self) -> Modalities:
        if self.sentinel2_l2a is None and self.sentinel1_rtc is None:
            raise ValueError("give at least one modality: sentinel2_l2a or sentinel1_rtc")
        return self


# --- data.output ---------------------------------------------------------------------------


class AllowedValue(_Strict):
    """One class: the value a head writes, its label and colour (RGB or RGBA, 0..255)."""

    value: int | str
    label: str
    color: list[int] = Field(min_length=3, max_length=4)

    @field_validator("color")
    @classmethod
    def _channels(cls, v: list[int]) -> list[int]:
        if any(not 0 <= c <= 255 for c in v):
            raise ValueError(f"colour channels must be 0..255, got {v}")
        return v


class ClassesField(_Strict):
    """A head that writes class values (``segmentation``; ``classification`` for vectors)."""

    field_type: Literal["segmentation", "classification"]
    name: str | None = None
    allowed_values: list[AllowedValue] = Field(min_length=1)
    nodata_value: int | None = None

    @model_validator(mode="after")
    def _unique(self) -> ClassesField:
        seen: set[Any] = set()
        for v in self.allowed_values:
            if v.value in seen:
                raise ValueError(f"class value {v.value!r} is listed twice")
            seen.add(v.value)
        return self


class RegressionField(_Strict):
    """A head that writes a continuous value in ``min_value..max_value``."""

    field_type: Literal["regression"]
    name: str | None = None
    min_value: float
    max_value: float
    colormap_name: str = "viridis"
    nodata_value: float | None = None

    @model_validator(mode="after")
    def _range(self) -> RegressionField:
        if self.min_value >= self.max_value:
            raise ValueError(f"min_value {self.min_value} must be below max_value {self.max_value}")
        return self


OutputField = Annotated[ClassesField | RegressionField, Field(discriminator="field_type")]


def _fields_form(v: Any) -> str:
    return "mapping" if isinstance(v, dict) else "list"


class Output(_Strict):
    """What the model writes: one field per head, in band order."""

    data_type: Literal["raster", "vector"]
    fields: Annotated[
        Annotated[list[OutputField], Tag("list")]
        | Annotated[dict[str, OutputField], Tag("mapping")],
        Discriminator(_fields_form),
    ]

    @model_validator(mode="after")
    def _named(self) -> Output:
        names: list[str] = []
        if isinstance(self.fields, dict):
            for name, f in self.fields.items():
                f.name = f.name or name
        for i, f in enumerate(self.field_list()):
            if not f.name:
                raise ValueError(f"fields[{i}] has no name")
            if f.name in names:
                raise ValueError(f"field name {f.name!r} is used twice: each head needs its own")
            names.append(f.name)
        if not names:
            raise ValueError("fields is empty: give at least one output field")
        return self

    def field_list(self) -> list[ClassesField | RegressionField]:
        """The fields in band order (the file's order)."""
        return list(self.fields.values()) if isinstance(self.fields, dict) else list(self.fields)


class Data(_Strict):
    """Inputs and outputs."""

    temporality: Temporality
    modalities: Modalities
    output: Output


# --- model ---------------------------------------------------------------------------------


class HuggingfaceSource(_Strict):
    """A released encoder by id (downloaded by the run, never by a check)."""

    name: Literal["huggingface"]
    model_id: str


class RegistrySource(_Strict):
    """An encoder from the platform's registry: its bundle is the project's extra files."""

    name: Literal["registry"]
    model_name: str
    embedding_size: int = Field(ge=1)


class ModelPathSource(_Strict):
    """An encoder bundle (``config.json``, optionally weights) at a path."""

    name: Literal["model_path"]
    model_path: str
    embedding_size: int = Field(ge=1)


class CheckpointSource(_Strict):
    """An encoder from a distributed checkpoint directory."""

    name: Literal["distributed_checkpoint"]
    checkpoint_path: str
    embedding_size: int = Field(ge=1)


EncoderSource = Annotated[
    HuggingfaceSource | RegistrySource | ModelPathSource | CheckpointSource,
    Field(discriminator="name"),
]


class OlmoEarthEncoder(_Strict):
    """The OlmoEarth encoder."""

    name: Literal["olmoearth"]
    patch_size: int = Field(ge=1, le=8)
    source: EncoderSource
    output: Literal["patch_tokens"] | None = None
    use_legacy_timestamps: bool | None = None
    token_pooling: bool | None = None


class ClassSpec(_Strict):
    """An rslearn component written out: ``class_path`` and its ``init_args``."""

    class_path: str
    init_args: dict[str, Any] = Field(default_factory=dict)


class ManualTask(_Strict):
    """A head written as rslearn layers (``decoder_layers``) and an rslearn task."""

    name: Literal["manual"]
    decoder_layers: list[ClassSpec] = Field(min_length=1)
    task: ClassSpec


class UnetDecoder(_Strict):
    """rslearn's UNetDecoder over the encoder's tokens."""

    name: Literal["unet", "upsample_conv"]
    num_channels: int | None = None
    conv_layers_per_resolution: int = Field(default=1, ge=1)


class SegmentationTask(_Strict):
    """A segmentation head with a named decoder (earlier forms)."""

    name: Literal["segmentation"]
    decoder: UnetDecoder


Task = Annotated[ManualTask | SegmentationTask, Field(discriminator="name")]


class Model(_Strict):
    """The network: one encoder, one task per output field."""

    encoder: OlmoEarthEncoder
    tasks: dict[str, Task] = Field(min_length=1)


# --- input_preprocessing, prediction_requests ------------------------------------------------


class Transform(_Strict):
    """A named transform (``olmoearth_normalize``, ``random_flip``, ``sentinel1_to_decibels``)."""

    name: Literal["olmoearth_normalize", "random_flip", "sentinel1_to_decibels"]
    x: bool = True
    y: bool = True


class SplitPreprocessing(_Strict):
    """How one split's inputs are cut and transformed."""

    input_size: int | None = Field(default=None, ge=1)
    input_mode: str | None = None
    transforms: list[Transform] | None = None
    additional_transforms: list[Transform] | None = None
    sampler: dict[str, Any] | None = None
    overlap_pixels: int | None = Field(default=None, ge=0)


class InputPreprocessing(_Strict):
    """``default`` and per-split overrides; ``predict.overlap_pixels`` for prediction."""

    default: SplitPreprocessing
    train: SplitPreprocessing | None = None
    val: SplitPreprocessing | None = None
    test: SplitPreprocessing | None = None
    predict: SplitPreprocessing | None = None


class UseUtm(_Strict):
    """Windows in the UTM zone of each partition."""

    method: Literal["use_utm"]
    x_resolution: float | None = None
    y_resolution: float | None = None


class CrsProjection(_Strict):
    """Windows in a fixed CRS."""

    method: Literal["crs"]
    crs: str
    x_resolution: float = Field(gt=0)
    y_resolution: float = Field(lt=0)


class GridPartitioner(_Strict):
    """A grid: degrees for partitions (no projection), pixels for windows."""

    name: Literal["grid"]
    grid_size: float = Field(gt=0)
    overlap_size: float = Field(default=0, ge=0)
    clip: bool = False
    projection: Annotated[UseUtm | CrsProjection, Field(discriminator="method")] | None = None


class NoopPartitioner(_Strict):
    """One piece per input geometry."""

    name: Literal["noop"]


Partitioner = Annotated[GridPartitioner | NoopPartitioner, Field(discriminator="name")]


class Partitioners(_Strict):
    """How a request is split: partitions, then windows."""

    request_to_partitions: Partitioner
    partition_to_windows: Partitioner


class CombineGeotiffStep(_Strict):
    """Mosaic rasters into COGs."""

    name: Literal["combine_geotiff"]
    max_pixels_per_dimension: int | None = Field(default=None, ge=1)
    value_transform: dict[str, Any] | None = None


class NoopStep(_Strict):
    """Pass results through."""

    name: Literal["noop"]


Step = Annotated[CombineGeotiffStep | NoopStep, Field(discriminator="name")]


class Postprocessors(_Strict):
    """Per-stage steps (earlier forms) or ``additional_steps`` after the defaults (0.13)."""

    window: Step | None = None
    partition: Step | None = None
    request: Step | None = None
    additional_steps: list[dict[str, Any]] | None = None


class PredictionRequests(_Strict):
    """How a prediction request is split and combined."""

    partitioners: Partitioners
    postprocessors: Postprocessors | None = None


class TranspilerContext(_Strict):
    """Values the transpiler needs that the model does not say."""

    downsample_factor: int = Field(default=1, ge=1)


class UnifiedConfig(_Strict):
    """``olmoearth_config.yaml``."""

    config_version: str
    data: Data
    model: Model | None = None
    input_preprocessing: InputPreprocessing | None = None
    prediction_requests: PredictionRequests | None = None
    transpiler_context: TranspilerContext | None = None
    training: dict[str, Any] | None = None
    labeled_data_prep: dict[str, Any] | None = None

    @field_validator("config_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        text = str(v)
        m = VERSION.match(text)
        if m is None or int(m.group(1)) != 0 or int(m.group(2)) not in SUPPORTED_MINOR:
            raise ValueError(
                f"config_version {text!r} is not supported: this runner reads 0.1 to "
                f"0.{SUPPORTED_MINOR[-1]} (0.13.0 is the newest it knows)"
            )
        return text


def head_problems(cfg: UnifiedConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, message) for each task without an output field and field without a task."""
    if cfg.model is None:
        return []
    out: list[tuple[tuple[str | int, ...], str]] = []
    fields = cfg.data.output.field_list()
    names = [f.name for f in fields]
    for task in cfg.model.tasks:
        if task not in names:
            out.append(
                (
                    ("model", "tasks", task),
                    f"task {task!r} has no output field (data.output.fields names "
                    f"{', '.join(str(n) for n in names)}): each task writes the field of its name",
                )
            )
    listed = isinstance(cfg.data.output.fields, list)
    for i, f in enumerate(fields):
        if f.name not in cfg.model.tasks:
            key: tuple[str | int, ...] = ("data", "output", "fields", i if listed else str(f.name))
            out.append((key, f"output field {f.name!r} has no task in model.tasks"))
    return out
