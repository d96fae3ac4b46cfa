"""Ready-made vector postprocessors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.projection import PixelGrid
from rslp.common.postprocessing.geojson import (
    DedupeRule,
    read_features,
    rfc7946,
    write_feature_collection,
    write_geoparquet,
)
from rslp.common.postprocessing.interface import OutputLayer, WindowResult
from rslp.common.postprocessing.passthrough import PassThrough


def _require_vector(layer: OutputLayer, who: str) -> None:
    if layer.type != "vector":
        raise ValueError(f"{who} needs a vector output layer; layer {layer.name!r} is {layer.type}")


def window_footprint(result: WindowResult) -> BaseGeometry:
    """The window's extent in lon/lat (edges split every kilometre to follow the projection)."""
    b = result.bounds
    box = shapely.segmentize(shapely.box(*b), max(1.0, 1000.0 / result.resolution))
    return pixels_to_lonlat(box, result)


def pixels_to_lonlat(geom: BaseGeometry, result: WindowResult) -> BaseGeometry:
    """A geometry in the window's pixel coordinates, in lon/lat."""
    grid = PixelGrid(result.crs, result.resolution)

    def f(c: np.ndarray) -> np.ndarray:
        lon, lat = grid.pixels_to_lonlat(c[:, 0], c[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, f)


class NoopVector(PassThrough):
    """Vector outputs as GeoJSON, one file per window.

    Window stage: ``<window>.geojson``: the model's features in lon/lat, each with the
    properties of the request feature it falls in (model properties win on a clash),
    plus ``request_id``, ``window`` and ``partition``. Partition and dataset stages: copy.

    Args:
        window_geometry: replace each feature's geometry by the window's footprint (for
            per-window classification, whose rslearn output is the window's corner point).
    """

    LAYER_TYPE = "vector"

    def __init__(self, window_geometry: bool = False) -> None:
        self.window_geometry = window_geometry

    def process_window(self, result: WindowResult, layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Write the window's features in lon/lat with request properties attached."""
        _require_vector(layer, type(self).__name__)
        footprint = window_footprint(result) if self.window_geometry else None
        feats: list[dict[str, Any]] = []
        for vf in result.vector or []:
            geom = footprint if footprint is not None else pixels_to_lonlat(vf.geometry, result)
            request = next(
                (r for r in result.request_features if r.geometry.intersects(geom)),
                result.request_features[0] if result.request_features else None,
            )
            props: dict[str, Any] = {}
            if request is not None:
                props.update(request.properties)
                props["request_id"] = request.id
            props.update(vf.properties)
            props.update(window=result.name, partition=result.partition_id)
            feats.append({"type": "Feature", "properties": props, "geometry": rfc7946(geom)})
        return [write_feature_collection(out_dir / f"{result.name}.geojson", feats)]


class CombineGeojson(NoopVector):
    """Merge vector outputs into one GeoJSON per partition and one for the request.

    Window stage: as :class:`NoopVector`. Partition stage: ``<partition>.geojson``;
    dataset stage: ``result.geojson`` (RFC 7946 FeatureCollection) and, with
    ``geoparquet``, ``result.parquet``. Both merging stages remove duplicates that
    overlapping windows predicted (see
    :class:`~rslp.common.postprocessing.geojson.DedupeRule`): the highest
    ``score_property`` wins, else the first by window name. Use it for detections and
    per-window classes.

    Args:
        window_geometry: see :class:`NoopVector`.
        dedupe_distance_m: points/lines closer than this are the same object.
        dedupe_iou: polygons overlapping at least this much are the same object.
        dedupe_property: only features with equal values of this property can be
            duplicates (e.g. the class); None compares geometry only.
        score_property: the confidence property used to choose among duplicates.
        geoparquet: also write ``result.parquet`` (GeoParquet 1.1).
    """

    def __init__(
        self,
        window_geometry: bool = False,
        dedupe_distance_m: float = 10.0,
        dedupe_iou: float = 0.5,
        dedupe_property: str | None = None,
        score_property: str | None = "score",
        geoparquet: bool = False,
    ) -> None:
        super().__init__(window_geometry=window_geometry)
        self.dedupe = DedupeRule(dedupe_distance_m, dedupe_iou, dedupe_property, score_property)
        self.geoparquet = geoparquet

    def _merge(self, inputs: list[Path]) -> list[dict[str, Any]]:
        feats = [f for p in sorted(inputs) for f in read_features(p)]
        return self.dedupe.apply(feats)

    def process_partition(
        self, inputs: list[Path], layer: OutputLayer, out_dir: Path, partition_id: str
    ) -> list[Path]:
        """Merge a partition's window GeoJSON files into ``<partition>.geojson``."""
        _require_vector(layer, type(self).__name__)
        return [write_feature_collection(out_dir / f"{partition_id}.geojson", self._merge(inputs))]

    def process_dataset(self, inputs: list[Path], layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Merge all partitions into ``result.geojson`` (and ``result.parquet``)."""
        _require_vector(layer, type(self).__name__)
        feats = self._merge(inputs)
        out = [write_feature_collection(out_dir / "result.geojson", feats)]
        if self.geoparquet:
            out.append(write_geoparquet(out_dir / "result.parquet", feats))
        return out
