"""Pydantic models of the project's strategy files.

These models are the single source of truth for ``partition_strategies.yaml`` and
``postprocessing_strategies.yaml``: the runner loads the files through them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)


class StrategyConfig(BaseModel):
    """One strategy: a class by ``class_path`` and the keyword arguments to build it."""

    model_config = ConfigDict(extra="forbid")

    class_path: str = Field(
        description=(
            "Dotted path of the class, e.g. rslp.common.partitioners.grid.GridPartitioner. "
            "The seed's esrun.tools.* class paths are accepted as aliases."
        )
    )
    init_args: dict[str, Any] | None = Field(
        default=None, description="Keyword arguments for the class constructor."
    )

    @field_validator("init_args", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        """An empty ``init_args:`` key in YAML parses as None; treat it as no arguments."""
        return {} if v is None else v


class ProjectionConfig(BaseModel):
    """The projection windows are created in.

    With ``crs`` unset, each feature's windows use the UTM zone of the feature's centroid
    (as rslearn's ``--utm``); ``resolution`` is in CRS units per pixel.
    """

    model_config = ConfigDict(extra="forbid")

    crs: str | None = Field(default=None, description="e.g. 'EPSG:32633'; default: UTM zone")
    resolution: float = Field(
        default=10.0, gt=0, allow_inf_nan=False, description="CRS units per pixel"
    )


DEFAULT_MIN_WINDOW_SUCCESS_RATE = 0.9


def success_rate(what: str) -> Any:
    """A ``min_window_success_rate`` field: a share in [0, 1], 0.9 unless set."""
    return Field(
        default=DEFAULT_MIN_WINDOW_SUCCESS_RATE, ge=0, le=1, allow_inf_nan=False, description=what
    )


class DatasetBuildConfig(BaseModel):
    """How the dataset step treats windows without imagery and flaky data sources.

    ``dataset_build`` in ``partition_strategies.yaml`` (seed format) or at the top level
    of ``olmoearth_run.yaml`` (reference format). None of it changes what a ready window
    holds, so changing it re-runs nothing.
    """

    model_config = ConfigDict(extra="forbid")

    min_window_success_rate: float = success_rate(
        "The run fails when ready windows / planned windows (over the whole run) falls "
        "below this; 0 accepts any number of rejected windows."
    )
    retry_max_attempts: int = Field(
        default=4,
        ge=0,
        le=100,
        description=(
            "Retries (after the first attempt) of a data-source phase that failed "
            "transiently (HTTP 5xx/429, timeouts, connection resets)."
        ),
    )
    retry_backoff: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds before the first retry; doubled for each later one (with jitter).",
    )
    retry_max_backoff: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="The longest wait between two attempts, in seconds.",
    )


class PartitionStrategiesConfig(BaseModel):
    """``partition_strategies.yaml``.

    ``strategy_large`` splits the request into partitions (rslearn window groups);
    ``strategy_small`` splits each partition into rslearn windows; ``dataset_build`` says
    how many windows may lack imagery and how data sources are retried.
    """

    model_config = ConfigDict(extra="forbid")

    strategy_large: StrategyConfig
    strategy_small: StrategyConfig
    projection: ProjectionConfig = Field(default_factory=ProjectionConfig)
    dataset_build: DatasetBuildConfig = Field(default_factory=DatasetBuildConfig)


RGB = tuple[int, int, int] | tuple[int, int, int, int]


class ClassValue(BaseModel):
    """One class of a classification field: its stored value, label and colour."""

    model_config = ConfigDict(extra="forbid")

    value: int | str = Field(description="The value stored in the raster or GeoJSON property.")
    label: str = Field(description="The human-readable label.")
    color: RGB = Field(description="RGB or RGBA, each 0-255.")

    @field_validator("color")
    @classmethod
    def _channels(cls, v: RGB) -> RGB:
        if any(not 0 <= c <= 255 for c in v):
            raise ValueError(f"colour channels must be 0-255, got {list(v)}")
        return v

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        """The colour with alpha (255 when not given)."""
        c = self.color
        return (c[0], c[1], c[2], c[3] if len(c) == 4 else 255)


class ClassificationField(BaseModel):
    """A classified output: a raster band or a GeoJSON property, and its classes."""

    model_config = ConfigDict(extra="forbid")

    property_name: str = Field(description="GeoJSON property, or the raster band's name.")
    allowed_values: list[ClassValue] = Field(min_length=1)
    band_index: int | None = Field(default=None, ge=1, description="1-based raster band.")
    confidence_property_name: str | None = None
    confidence_band_index: int | None = Field(default=None, ge=1)


class RegressionField(BaseModel):
    """A continuous output: its value range and the colormap of its quicklook."""

    model_config = ConfigDict(extra="forbid")

    property_name: str = Field(description="GeoJSON property, or the raster band's name.")
    min_value: float
    max_value: float
    band_index: int | None = Field(default=None, ge=1, description="1-based raster band.")
    colormap_name: str = Field(default="viridis", description="A matplotlib colormap name.")

    @model_validator(mode="after")
    def _range(self) -> RegressionField:
        if not self.max_value > self.min_value:
            raise ValueError(f"max_value {self.max_value} must exceed min_value {self.min_value}")
        return self


class DetectionObject(BaseModel):
    """An object a detection model finds."""

    model_config = ConfigDict(extra="forbid")

    detected_object_name: str
    confidence_property_name: str | None = None
    confidence_band_index: int | None = Field(default=None, ge=1)


class InferenceResultsConfig(BaseModel):
    """What the model's results mean: their type and, per field, classes or value range.

    The reference runner's ``inference_results_config``. ``data_type`` must match the
    output layer's type; classification colours become the result COG's colormap and the
    quicklook's legend; regression ranges and colormaps drive the quicklook.
    """

    model_config = ConfigDict(extra="forbid")

    data_type: Annotated[
        Literal["RASTER", "VECTOR"],
        WithJsonSchema(
            {
                "type": "string",
                "pattern": "^([Rr][Aa][Ss][Tt][Ee][Rr]|[Vv][Ee][Cc][Tt][Oo][Rr])$",
                "description": "RASTER or VECTOR (any case).",
            }
        ),
    ] = Field(description="RASTER or VECTOR (any case).")
    classification_fields: list[ClassificationField] | None = None
    regression_fields: list[RegressionField] | None = None
    detection_objects: list[DetectionObject] | None = None

    @field_validator("data_type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class PostprocessingStrategiesConfig(BaseModel):
    """``postprocessing_strategies.yaml``: one strategy per stage.

    ``strategy_small`` is the window stage, ``strategy_medium`` the partition stage and
    ``strategy_large`` the dataset stage (the seed's names). ``inference_results_config``
    (optional here, required in the reference format) describes what the results mean.
    """

    model_config = ConfigDict(extra="forbid")

    strategy_small: StrategyConfig
    strategy_medium: StrategyConfig
    strategy_large: StrategyConfig
    inference_results_config: InferenceResultsConfig | None = None


class ReferencePartitionStrategies(BaseModel):
    """``partition_strategies`` of ``olmoearth_run.yaml``."""

    model_config = ConfigDict(extra="forbid")

    partition_request_geometry: StrategyConfig = Field(
        description="Splits the request into partitions (the seed's strategy_large)."
    )
    prepare_window_geometries: StrategyConfig = Field(
        description="Splits a partition into windows (the seed's strategy_small)."
    )


class ReferencePostprocessingStrategies(BaseModel):
    """``postprocessing_strategies`` of ``olmoearth_run.yaml``."""

    model_config = ConfigDict(extra="forbid")

    process_window: StrategyConfig = Field(description="Window stage (strategy_small).")
    process_partition: StrategyConfig = Field(description="Partition stage (strategy_medium).")
    process_dataset: StrategyConfig = Field(description="Dataset stage (strategy_large).")


class TrainerOverrides(BaseModel):
    """What a fine-tune changes in model.yaml's training (this runner's own key)."""

    model_config = ConfigDict(extra="forbid")

    max_epochs: int | None = Field(default=None, ge=1, description="Epochs of the fine-tune.")
    learning_rate: float | None = Field(
        default=None, gt=0, description="The optimizer's lr (model.init_args.optimizer)."
    )
    batch_size: int | None = Field(default=None, ge=1, description="data.init_args.batch_size.")
    seed: int = Field(default=0, description="Seed of the fit (deterministic on CPU).")


class FinetuneConfig(BaseModel):
    """``finetune_strategies.yaml``, or ``window_prep`` of ``olmoearth_run.yaml``.

    How annotations become labeled rslearn windows and splits, and (``trainer``, this
    runner's own key) how the fit differs from model.yaml's.
    """

    model_config = ConfigDict(extra="forbid")

    sampler: StrategyConfig | None = Field(
        default=None, description="Chooses annotation tasks (default: all of them)."
    )
    labeled_window_preparer: StrategyConfig = Field(
        description="Turns one annotation task into labeled windows."
    )
    data_splitter: StrategyConfig = Field(description="Assigns each window train/val/test.")
    label_layer: str = Field(default="label", description="The dataset.json layer of labels.")
    group_name: str = Field(default="default", description="The rslearn window group.")
    split_property: str = Field(default="split", description="The window option holding the split.")
    label_property: str | None = Field(
        default=None,
        description="The key of oe_labels holding the class (default: the only key).",
    )
    trainer: TrainerOverrides = Field(default_factory=TrainerOverrides)
    min_window_success_rate: float = success_rate(
        "Fine-tuning fails when labeled windows with imagery / labeled windows falls "
        "below this; windows without imagery are left out of every split."
    )


class AnnotationTaskProperties(BaseModel):
    """An annotation task's properties: its id and time range."""

    model_config = ConfigDict(extra="allow")

    oe_annotations_task_id: str | int
    oe_start_time: str
    oe_end_time: str


class AnnotationProperties(BaseModel):
    """An annotation's properties: its task and its labels."""

    model_config = ConfigDict(extra="allow")

    oe_annotations_task_id: str | int
    oe_labels: dict[str, int | float | str | None]


class AnnotationTaskFeature(BaseModel):
    """One annotation task: a region and a time range that annotators labeled."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    properties: AnnotationTaskProperties
    geometry: RequestGeometry


class AnnotationFeature(BaseModel):
    """One annotation: a labeled point or polygon inside its task's region."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    properties: AnnotationProperties
    geometry: RequestGeometry


class AnnotationTasks(BaseModel):
    """``annotations/annotation_task_features.geojson``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[AnnotationTaskFeature] = Field(min_length=1)


class Annotations(BaseModel):
    """``annotations/annotation_features.geojson``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[AnnotationFeature] = Field(min_length=1)


class ReferenceRunConfig(BaseModel):
    """``olmoearth_run.yaml``: the reference runner's single project file.

    Its sections load into the same models as the seed format's files:
    ``partition_strategies`` into :class:`PartitionStrategiesConfig`,
    ``postprocessing_strategies`` and ``inference_results_config`` into
    :class:`PostprocessingStrategiesConfig`. Other top-level keys are allowed (as the
    reference allows them) and ignored.
    """

    model_config = ConfigDict(extra="allow")

    partition_strategies: ReferencePartitionStrategies
    postprocessing_strategies: ReferencePostprocessingStrategies
    inference_results_config: InferenceResultsConfig
    dataset_build: DatasetBuildConfig = Field(
        default_factory=DatasetBuildConfig,
        description="Windows without imagery and data-source retries (this runner's key).",
    )
    window_prep: FinetuneConfig | None = Field(
        default=None, description="Fine-tuning: how annotations become labeled windows."
    )


class ClassConfig(BaseModel):
    """A jsonargparse class reference in model.yaml: ``class_path`` and ``init_args``."""

    model_config = ConfigDict(extra="allow")

    class_path: str = Field(description="Dotted path of the class.")
    init_args: dict[str, Any] | None = Field(default=None, description="Constructor arguments.")


class ModelConfigFile(BaseModel):
    """``model.yaml``: an rslearn Lightning config (``rslearn model fit/predict --config``).

    Only the top level is described here; the classes it names check their own arguments
    (``esbuild validate`` binds them and parses the whole file with rslearn's CLI).
    """

    model_config = ConfigDict(extra="allow")

    model: ClassConfig = Field(description="The LightningModule, usually RslearnLightningModule.")
    data: ClassConfig = Field(description="The LightningDataModule, usually RslearnDataModule.")
    trainer: dict[str, Any] = Field(
        default_factory=dict,
        description="Lightning Trainer arguments; callbacks must include an RslearnWriter.",
    )
    seed_everything: int | bool | None = None
    ckpt_path: str | None = None


class RequestGeometry(BaseModel):
    """An RFC 7946 geometry."""

    model_config = ConfigDict(extra="forbid")

    type: Literal[
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
    ]
    coordinates: list[Any]
    bbox: list[float] | None = None


class RequestProperties(BaseModel):
    """A request feature's properties: a time range (``es_*`` or ``oe_*``) and anything else."""

    model_config = ConfigDict(extra="allow")

    es_start_time: str | None = Field(default=None, description="ISO 8601 start (inclusive).")
    es_end_time: str | None = Field(default=None, description="ISO 8601 end; may equal start.")
    oe_start_time: str | None = Field(default=None, description="Alias of es_start_time.")
    oe_end_time: str | None = Field(default=None, description="Alias of es_end_time.")


class RequestFeatureModel(BaseModel):
    """One requested place and time."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: str | int | None = None
    properties: RequestProperties
    geometry: RequestGeometry


class PredictionRequest(BaseModel):
    """A prediction request: an RFC 7946 FeatureCollection in lon/lat."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[RequestFeatureModel] = Field(min_length=1)
