"""Pydantic models of the project's strategy files.

These models are the single source of truth for ``partition_strategies.yaml`` and
``postprocessing_strategies.yaml``: the runner loads the files through them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class PartitionStrategiesConfig(BaseModel):
    """``partition_strategies.yaml``.

    ``strategy_large`` splits the request into partitions (rslearn window groups);
    ``strategy_small`` splits each partition into rslearn windows.
    """

    model_config = ConfigDict(extra="forbid")

    strategy_large: StrategyConfig
    strategy_small: StrategyConfig
    projection: ProjectionConfig = Field(default_factory=ProjectionConfig)


class PostprocessingStrategiesConfig(BaseModel):
    """``postprocessing_strategies.yaml``: one strategy per stage.

    ``strategy_small`` is the window stage, ``strategy_medium`` the partition stage and
    ``strategy_large`` the dataset stage (the seed's names).
    """

    model_config = ConfigDict(extra="forbid")

    strategy_small: StrategyConfig
    strategy_medium: StrategyConfig
    strategy_large: StrategyConfig


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
