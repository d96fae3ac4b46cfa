"""GeoJSON (RFC 7946) and GeoParquet writing, and duplicate removal for vector outputs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from rslp.fsutil import atomic_path

COORD_DECIMALS = 7  # about 1 cm: stable output, no false precision
METRES_PER_DEGREE = 111_320.0  # of longitude at the equator


def rfc7946(geom: BaseGeometry) -> dict[str, Any]:
    """A geometry as an RFC 7946 GeoJSON object: rounded, counter-clockwise exteriors."""
    g = shapely.set_precision(geom, 10.0**-COORD_DECIMALS)
    if g.geom_type in ("Polygon", "MultiPolygon"):
        g = shapely.orient_polygons(g)
    return dict(json.loads(shapely.to_geojson(g)))


def write_feature_collection(path: Path, features: list[dict[str, Any]]) -> Path:
    """Write a FeatureCollection (one feature per line), atomically."""
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write('{"type": "FeatureCollection", "features": [\n')
        f.write(",\n".join(json.dumps(feat, sort_keys=True) for feat in features))
        f.write("\n]}\n")
    return path


def read_features(path: Path) -> list[dict[str, Any]]:
    """The features of a GeoJSON FeatureCollection file."""
    return list(json.loads(path.read_text())["features"])


def _metres(a: BaseGeometry, b: BaseGeometry) -> float:
    """Approximate ground distance between two lon/lat geometries, in metres."""
    pa, pb = shapely.shortest_line(a, b).coords
    lat = math.radians((pa[1] + pb[1]) / 2)
    return math.hypot(
        (pa[0] - pb[0]) * METRES_PER_DEGREE * math.cos(lat), (pa[1] - pb[1]) * 110_540
    )


def _iou(a: BaseGeometry, b: BaseGeometry) -> float:
    union = shapely.union(a, b).area
    return 0.0 if union == 0 else shapely.intersection(a, b).area / union


@dataclass(frozen=True)
class DedupeRule:
    """When two vector predictions from overlapping windows are the same object.

    Two features from *different windows* (property ``window``) are duplicates when they
    have the same geometry type, the same ``same_property`` value (when set), and are
    points/lines within ``distance_m`` metres, or polygons with intersection-over-union
    at least ``iou``. Of a group of duplicates the one with the highest
    ``score_property`` is kept (ties and missing scores: the first in input order, which
    callers make deterministic: window name, then index).
    """

    distance_m: float = 10.0
    iou: float = 0.5
    same_property: str | None = None
    score_property: str | None = "score"

    def score(self, feature: dict[str, Any]) -> float:
        """The feature's confidence (0 when absent)."""
        v = feature["properties"].get(self.score_property) if self.score_property else None
        return float(v) if isinstance(v, int | float) else 0.0

    def duplicates(
        self, a: dict[str, Any], b: dict[str, Any], ga: BaseGeometry, gb: BaseGeometry
    ) -> bool:
        """Whether features ``a`` and ``b`` (geometries ``ga``, ``gb``) are one object."""
        pa, pb = a["properties"], b["properties"]
        if pa.get("window") == pb.get("window") or ga.geom_type != gb.geom_type:
            return False
        if self.same_property and pa.get(self.same_property) != pb.get(self.same_property):
            return False
        if ga.area > 0:
            return _iou(ga, gb) >= self.iou
        return _metres(ga, gb) <= self.distance_m

    def apply(self, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The features without duplicates, in input order."""
        geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
        tree = shapely.STRtree(geoms)
        order = sorted(range(len(features)), key=lambda i: (-self.score(features[i]), i))
        dropped = np.zeros(len(features), dtype=bool)
        for i in order:
            if dropped[i]:
                continue
            gi = geoms[i]
            lat = abs(gi.centroid.y) if not gi.is_empty else 0.0
            reach = self.distance_m / 110_000.0 / max(math.cos(math.radians(min(lat, 89.0))), 1e-3)
            for j in tree.query(gi.buffer(reach) if gi.area == 0 else gi):
                j = int(j)
                if (
                    j != i
                    and not dropped[j]
                    and self.duplicates(features[i], features[j], gi, geoms[j])
                ):
                    dropped[j] = True
        return [f for i, f in enumerate(features) if not dropped[i]]


def write_geoparquet(path: Path, features: list[dict[str, Any]]) -> Path:
    """Write features as GeoParquet 1.1 (WKB geometry in OGC:CRS84), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
    keys = sorted({k for f in features for k in f["properties"]})
    columns: dict[str, Any] = {}
    for k in keys:
        values = [f["properties"].get(k) for f in features]
        try:
            columns[k] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[k] = pa.array([None if v is None else json.dumps(v) for v in values])
    columns["geometry"] = pa.array([shapely.to_wkb(g) for g in geoms], type=pa.binary())
    table = pa.table(columns)
    bbox = list(shapely.total_bounds(geoms)) if geoms else []
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": sorted({g.geom_type for g in geoms}),
                **({"bbox": bbox} if bbox else {}),
            }
        },
    }
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
