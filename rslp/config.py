"""Pydantic models of the project's strategy files.

These models are the single source of truth for ``partition_strategies.yaml`` and
``postprocessing_strategies.yaml``: the runner loads the files through them.
"""

from __future__ import annotations

from typing import Any

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
    resolution: float = Field(default=10.0, gt=0, description="CRS units per pixel")


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
