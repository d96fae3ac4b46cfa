"""Rule: prediction requests are RFC 7946 with valid geometries and ordered times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
import shapely.geometry
import shapely.validation

from esbuild.diagnostics import Diagnostic
from esbuild.documents import Document, KeyPath
from esbuild.rules.context import ProjectDocs

PAIRS = (("es_start_time", "es_end_time"), ("oe_start_time", "oe_end_time"))


def _time(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _check_feature(
    doc: Document, i: int, feat: dict[str, Any], seen: dict[Any, int]
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    key: KeyPath = ("features", i)
    raw = feat.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    pair = next(((s, e) for s, e in PAIRS if s in props or e in props), None)
    if pair is None:
        out.append(
            doc.diag(
                "feature has no es_start_time/es_end_time",
                (*key, "properties"),
                hint="add ISO 8601 es_start_time and es_end_time",
                rule="request",
            )
        )
    else:
        times = {}
        for k in pair:
            t = _time(props.get(k))
            if t is None:
                out.append(
                    doc.diag(
                        f"{k} is missing or not an ISO 8601 time: {props.get(k)!r}",
                        (*key, "properties", k),
                        rule="request",
                    )
                )
            times[k] = t
        t0, t1 = times[pair[0]], times[pair[1]]
        if t0 and t1 and t1 < t0:
            out.append(
                doc.diag(
                    f"time range is reversed ({props[pair[0]]} > {props[pair[1]]})",
                    (*key, "properties"),
                    rule="request",
                )
            )
    fid = feat.get("id", props.get("id"))
    if fid is not None:
        if fid in seen:
            out.append(
                doc.diag(
                    f"feature id {fid!r} repeats features[{seen[fid]}]",
                    (*key, "id"),
                    rule="request",
                )
            )
        seen.setdefault(fid, i)
    geom_json = feat.get("geometry")
    try:
        geom = shapely.geometry.shape(geom_json)
    except Exception as e:  # shapely raises several types for malformed coordinates
        out.append(doc.diag(f"geometry does not parse: {e}", (*key, "geometry"), rule="request"))
        return out
    if geom.is_empty:
        out.append(doc.diag("geometry is empty", (*key, "geometry"), rule="request"))
        return out
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        out.append(
            doc.diag(
                f"coordinates are not lon/lat in range: bounds {geom.bounds}",
                (*key, "geometry", "coordinates"),
                hint="RFC 7946: longitude, latitude in WGS84 (EPSG:4326)",
                rule="request",
            )
        )
    if not geom.is_valid:
        out.append(
            doc.diag(
                f"invalid geometry: {shapely.validation.explain_validity(geom)}",
                (*key, "geometry"),
                hint="fix the ring (shapely.make_valid)",
                rule="request",
            )
        )
    return out


def check_requests(project: ProjectDocs) -> list[Diagnostic]:
    """Check every prediction request file."""
    out: list[Diagnostic] = []
    for doc in project.requests:
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            continue  # the schema rule reports the shape
        if "crs" in data:
            out.append(
                doc.diag(
                    "RFC 7946 GeoJSON has no 'crs' member; coordinates are lon/lat",
                    ("crs",),
                    rule="request",
                )
            )
        seen: dict[Any, int] = {}
        for i, feat in enumerate(data["features"]):
            if isinstance(feat, dict):
                out += _check_feature(doc, i, feat, seen)
    return out
