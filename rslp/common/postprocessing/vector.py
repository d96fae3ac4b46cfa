"""Ready-made vector postprocessors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.projection import PixelGrid
from rslp.common.postprocessing.geojson import (
    METRES_PER_DEGREE,
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


GEOMETRY_SOURCES = ("result", "request", "window")


class NoopVector(PassThrough):
    """Vector outputs as GeoJSON, one file per window.

    Window stage: ``<window>.geojson``: the model's features in lon/lat, each with the
    properties of the request feature it falls in (model properties win on a clash),
    plus ``request_id``, ``window`` and ``partition``. Partition and dataset stages: copy.

    Args:
        window_geometry: replace each feature's geometry by the window's footprint (for
            per-window classification, whose rslearn output is the window's corner point).
            Same as ``geometry_source: window``.
        geometry_source: where each feature's geometry comes from: ``result`` (the model's,
            the default), ``request`` (the request feature it falls in, as the reference
            runner's default) or ``window`` (the window's footprint).
        include_request_properties: add the request feature's properties (model
            properties win on a clash); ``request_id``, ``window`` and ``partition`` are
            always added.
    """

    LAYER_TYPE = "vector"

    def __init__(
        self,
        window_geometry: bool = False,
        geometry_source: str | None = None,
        include_request_properties: bool = True,
    ) -> None:
        if geometry_source is not None and geometry_source not in GEOMETRY_SOURCES:
            raise ValueError(
                f"geometry_source must be one of {list(GEOMETRY_SOURCES)}, got {geometry_source!r}"
            )
        if window_geometry and geometry_source not in (None, "window"):
            raise ValueError(
                f"window_geometry: true contradicts geometry_source: {geometry_source}"
            )
        if not isinstance(include_request_properties, bool):
            raise ValueError(
                f"include_request_properties must be true or false, got "
                f"{include_request_properties!r}"
            )
        self.geometry_source = geometry_source or ("window" if window_geometry else "result")
        self.include_request_properties = include_request_properties

    def process_window(self, result: WindowResult, layer: OutputLayer, out_dir: Path) -> list[Path]:
        """Write the window's features in lon/lat with request properties attached."""
        _require_vector(layer, type(self).__name__)
        footprint = window_footprint(result) if self.geometry_source == "window" else None
        feats: list[dict[str, Any]] = []
        for vf in result.vector or []:
            geom = footprint if footprint is not None else pixels_to_lonlat(vf.geometry, result)
            request = next(
                (r for r in result.request_features if r.geometry.intersects(geom)),
                result.request_features[0] if result.request_features else None,
            )
            props: dict[str, Any] = {}
            if request is not None:
                if self.include_request_properties:
                    props.update(request.properties)
                props["request_id"] = request.id
                if self.geometry_source == "request":
                    geom = request.geometry
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
        geometry_source: see :class:`NoopVector`.
        include_request_properties: see :class:`NoopVector`.
    """

    def __init__(
        self,
        window_geometry: bool = False,
        dedupe_distance_m: float = 10.0,
        dedupe_iou: float = 0.5,
        dedupe_property: str | None = None,
        score_property: str | None = "score",
        geoparquet: bool = False,
        geometry_source: str | None = None,
        include_request_properties: bool = True,
    ) -> None:
        super().__init__(window_geometry, geometry_source, include_request_properties)
        self.dedupe: DedupeRule | None = DedupeRule(
            dedupe_distance_m, dedupe_iou, dedupe_property, score_property
        )
        self.geoparquet = geoparquet

    def _merge(self, inputs: list[Path]) -> list[dict[str, Any]]:
        feats = [f for p in sorted(inputs) for f in read_features(p)]
        return feats if self.dedupe is None else self.dedupe.apply(feats)

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


class RequestCombineGeojson(CombineGeojson):
    """:class:`CombineGeojson` with the reference runner's defaults (its class path maps here).

    Each result takes the geometry of the request feature it falls in
    (``geometry_source: request``) and the merging stages concatenate without removing
    duplicates, as the reference's CombineGeojson does: a per-feature classification
    project gets one feature per request feature, with the model's properties.

    Args:
        geometry_source: see :class:`NoopVector` (default ``request``).
        include_request_properties: see :class:`NoopVector`.
        window_geometry: see :class:`NoopVector`.
        geoparquet: also write ``result.parquet``.
    """

    def __init__(
        self,
        geometry_source: str | None = "request",
        include_request_properties: bool = True,
        window_geometry: bool = False,
        geoparquet: bool = False,
    ) -> None:
        super().__init__(
            window_geometry=window_geometry,
            geoparquet=geoparquet,
            geometry_source=None if window_geometry else geometry_source,
            include_request_properties=include_request_properties,
        )
        self.dedupe = None


class CombineAndDeduplicateGeojson(CombineGeojson):
    """:class:`CombineGeojson` with the reference runner's duplicate rule and arguments.

    Of features from different windows, polygons with IoU of at least ``min_iou`` and
    points within ``point_nearness`` degrees (measured as ground distance: 0.001 degree is
    about 111 m) are one object; the first by window name is kept (no score decides).

    Args:
        min_iou: polygons overlapping at least this much are duplicates.
        point_nearness: points (and lines) this close, in degrees, are duplicates.
        geometry_source: see :class:`NoopVector`.
        include_request_properties: see :class:`NoopVector`.
        geoparquet: also write ``result.parquet``.
    """

    def __init__(
        self,
        min_iou: float = 0.9,
        point_nearness: float = 0.001,
        geometry_source: str | None = None,
        include_request_properties: bool = True,
        geoparquet: bool = False,
    ) -> None:
        if not 0 < min_iou <= 1:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        if not point_nearness >= 0:
            raise ValueError(f"point_nearness must be >= 0, got {point_nearness!r}")
        super().__init__(
            dedupe_distance_m=point_nearness * METRES_PER_DEGREE,
            dedupe_iou=min_iou,
            score_property=None,
            geoparquet=geoparquet,
            geometry_source=geometry_source,
            include_request_properties=include_request_properties,
        )


class SimplifyPolygons(CombineGeojson):
    """Merge vector outputs and simplify their polygons.

    Merging is :class:`CombineGeojson`'s without removing duplicates. Polygons are
    simplified in lon/lat (``tolerance`` in degrees, shapely's Douglas-Peucker); a polygon
    that becomes empty or invalid is dropped, other geometries pass unchanged. The window
    stage is :class:`NoopVector`'s.

    Args:
        tolerance: the simplification tolerance, in degrees.
        preserve_topology: keep polygons valid (no self-intersections, holes kept).
        geometry_source: see :class:`NoopVector`.
        include_request_properties: see :class:`NoopVector`.
        geoparquet: also write ``result.parquet``.
    """

    def __init__(
        self,
        tolerance: float = 0.01,
        preserve_topology: bool = True,
        geometry_source: str | None = None,
        include_request_properties: bool = True,
        geoparquet: bool = False,
    ) -> None:
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
        super().__init__(
            geoparquet=geoparquet,
            geometry_source=geometry_source,
            include_request_properties=include_request_properties,
        )
        self.dedupe = None
        self.tolerance = tolerance
        self.preserve_topology = preserve_topology

    def _merge(self, inputs: list[Path]) -> list[dict[str, Any]]:
        out = []
        for f in super()._merge(inputs):
            g = shapely.geometry.shape(f["geometry"])
            if g.geom_type in ("Polygon", "MultiPolygon"):
                g = g.simplify(self.tolerance, preserve_topology=self.preserve_topology)
                if g.is_empty or not g.is_valid:
                    continue
                f = {**f, "geometry": rfc7946(g)}
            out.append(f)
        return out
