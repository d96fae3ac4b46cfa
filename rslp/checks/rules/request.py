"""Rule: prediction requests are RFC 7946 with valid geometries and ordered times."""

from __future__ import annotations

import math
from typing import Any

import shapely
import shapely.geometry
import shapely.validation

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document, KeyPath
from rslp.checks.project import ProjectDocs
from rslp.request import END_KEYS, START_KEYS, feature_id, parse_time, pick_time


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _position_problem(pos: Any) -> str | None:
    if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
        return f"a position is [longitude, latitude] (optionally altitude), got {pos!r}"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos):
        return f"position {pos!r} holds a value that is not a number"
    if not all(_finite(v) for v in pos):
        return f"position {pos!r} is not finite"
    lon, lat = pos[0], pos[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return f"position {pos!r} is not lon/lat in range (longitude -180..180, latitude -90..90)"
    return None


def _positions(coords: Any, key: KeyPath, least: int) -> tuple[KeyPath, str] | None:
    if not isinstance(coords, list):
        return key, f"expected a list of positions, got {coords!r}"
    if len(coords) < least:
        return key, f"{len(coords)} position(s), at least {least} needed"
    for j, pos in enumerate(coords):
        msg = _position_problem(pos)
        if msg:
            return (*key, j), msg
    return None


def _ring(coords: Any, key: KeyPath) -> tuple[KeyPath, str] | None:
    if isinstance(coords, list) and len(coords) < 4:
        return key, f"a linear ring needs at least 4 positions (closed), got {len(coords)}"
    found = _positions(coords, key, 4)
    if found is None and coords[0] != coords[-1]:
        return key, f"ring is not closed: it starts at {coords[0]} and ends at {coords[-1]}"
    return found


def _polygon(coords: Any, key: KeyPath) -> tuple[KeyPath, str] | None:
    if not isinstance(coords, list) or not coords:
        return key, "a polygon is a non-empty list of linear rings"
    for r, ring in enumerate(coords):
        found = _ring(ring, (*key, r))
        if found:
            return found
    return None


def raw_geometry_problem(geom: Any, key: KeyPath) -> tuple[KeyPath, str] | None:
    """RFC 7946 on the coordinates as written, before shapely normalises anything.

    Positions of 2-3 finite numbers in lon/lat range; LineStrings of >= 2 positions;
    polygon rings closed with >= 4 positions.

    Returns:
        (key path, message) of the first problem, or None.
    """
    if not isinstance(geom, dict):
        return key, f"expected a geometry object, got {geom!r}"
    kind, coords = geom.get("type"), geom.get("coordinates")
    ckey: KeyPath = (*key, "coordinates")
    if kind == "Point":
        msg = _position_problem(coords)
        return (ckey, msg) if msg else None
    if kind in ("MultiPoint", "LineString"):
        return _positions(coords, ckey, 1 if kind == "MultiPoint" else 2)
    if kind == "Polygon":
        return _polygon(coords, ckey)
    if not isinstance(coords, list):
        return ckey, f"expected a list, got {coords!r}"
    for i, part in enumerate(coords):
        if kind == "MultiLineString":
            found = _positions(part, (*ckey, i), 2)
        elif kind == "MultiPolygon":
            found = _polygon(part, (*ckey, i))
        else:
            return (*key, "type"), f"not an RFC 7946 geometry type for a request: {kind!r}"
        if found:
            return found
    return None


def _check_feature(
    doc: Document, i: int, feat: dict[str, Any], seen: dict[Any, int]
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    key: KeyPath = ("features", i)
    raw = feat.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    times = {}
    for keys in (START_KEYS, END_KEYS):  # as the runner picks them: the first one given
        found = pick_time(props, keys)
        if found is None:
            out.append(
                doc.diag(
                    f"feature has no {'/'.join(keys)}",
                    (*key, "properties"),
                    hint="add ISO 8601 es_start_time and es_end_time",
                    rule="request",
                )
            )
            continue
        k, v = found
        times[keys] = (k, v, parse_time(v))
        if times[keys][2] is None:
            out.append(
                doc.diag(
                    f"{k} is not an ISO 8601 time: {v!r}", (*key, "properties", k), rule="request"
                )
            )
    if len(times) == 2:
        (k0, v0, t0), (k1, v1, t1) = times[START_KEYS], times[END_KEYS]
        if t0 and t1 and t1 < t0:
            out.append(
                doc.diag(
                    f"time range is reversed ({k0} {v0} > {k1} {v1})",
                    (*key, "properties"),
                    rule="request",
                )
            )
    fid = feature_id(feat, i)  # the id the runner gives it (unsafe ids get a content hash)
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
    raw = raw_geometry_problem(geom_json, (*key, "geometry"))
    if raw is not None:
        out.append(
            doc.diag(raw[1], raw[0], hint="RFC 7946: closed rings, lon/lat numbers", rule="request")
        )
        return out
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
        if project.has_errors(doc):
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
