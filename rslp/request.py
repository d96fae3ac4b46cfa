"""Prediction requests: a GeoJSON FeatureCollection whose features carry a time range."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely.geometry
from shapely.geometry.base import BaseGeometry

from rslp.errors import ProjectError

START_KEYS = ("es_start_time", "oe_start_time")
END_KEYS = ("es_end_time", "oe_end_time")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RequestFeature:
    """One requested place and time.

    Attributes:
        id: a stable id, safe as a path component (the GeoJSON id when it is safe,
            else ``f<index>-<content hash>``).
        geometry: the geometry in WGS84 lon/lat.
        time_range: (start, end), timezone-aware; start may equal end.
        properties: the feature's properties as given.
    """

    id: str
    geometry: BaseGeometry
    time_range: tuple[datetime, datetime]
    properties: dict[str, Any] = field(default_factory=dict)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time string (``Z`` allowed; naive means UTC), or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _parse_time(value: Any, path: Path, key: str) -> datetime:
    ts = parse_time(value)
    if ts is None and not isinstance(value, str):
        raise ProjectError(path, f"expected an ISO 8601 time string, got {value!r}", key)
    if ts is None:
        raise ProjectError(path, f"{value!r} is not an ISO 8601 time", key)
    return ts


def pick_time(props: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of ``keys`` set (not null) in ``props``: (key, value), or None."""
    for k in keys:
        if props.get(k) is not None:
            return k, props[k]
    return None


def feature_id(raw: dict[str, Any], index: int) -> str:
    """A deterministic id for a raw GeoJSON feature, safe as a directory name."""
    given = raw.get("id", (raw.get("properties") or {}).get("id"))
    if given is not None and _SAFE.match(str(given)):
        return str(given)
    digest = hashlib.sha256(
        json.dumps({"g": raw.get("geometry"), "p": raw.get("properties")}, sort_keys=True).encode()
    ).hexdigest()[:8]
    return f"f{index}-{digest}"


PLATFORM_KEY = "geometry"


def unwrap(doc: Any) -> tuple[Any, str]:
    """A request as the FeatureCollection the runner reads, and the key it was under.

    A single Feature is read as a collection of one. A *platform request body* (the
    hosted service's ``{"geometry": <FeatureCollection>, "model_pipeline_id": ...,
    "workflow_type": ...}``) is read as the collection under ``geometry``; its other
    keys are ignored.

    Returns:
        (the collection, or ``doc`` unchanged when it is neither; ``"geometry"`` for a
        platform body, else ``""``).
    """
    prefix = ""
    if (
        isinstance(doc, dict)
        and doc.get("type") not in ("FeatureCollection", "Feature")
        and isinstance(doc.get(PLATFORM_KEY), dict)
        and doc[PLATFORM_KEY].get("type") in ("FeatureCollection", "Feature")
    ):
        doc, prefix = doc[PLATFORM_KEY], PLATFORM_KEY
    if isinstance(doc, dict) and doc.get("type") == "Feature" and "features" not in doc:
        doc = {"type": "FeatureCollection", "features": [doc]}
    return doc, prefix


def load_request(path: Path) -> list[RequestFeature]:
    """Load and check a prediction request.

    Args:
        path: a GeoJSON FeatureCollection (or a single Feature, or a platform request
            body: see :func:`unwrap`).

    Returns:
        the features, in file order.

    Raises:
        ProjectError: naming the file and the feature for any missing or bad value.
    """
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(path, "request file does not exist") from None
    except json.JSONDecodeError as e:
        raise ProjectError(path, f"not valid JSON: {e}") from None
    doc, prefix = unwrap(doc)
    at = f"{prefix}." if prefix else ""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ProjectError(
            path,
            "expected a GeoJSON FeatureCollection (or a platform request body with one under "
            "'geometry')",
            f"{at}type",
        )
    raw_features = doc.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise ProjectError(path, "expected a non-empty list of features", f"{at}features")

    features: list[RequestFeature] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_features):
        key = f"{at}features[{i}]"
        if not isinstance(raw, dict):
            raise ProjectError(path, "expected a Feature object", key)
        props = raw.get("properties") or {}
        start = pick_time(props, START_KEYS)
        end = pick_time(props, END_KEYS)
        if start is None or end is None:
            missing = "/".join(START_KEYS if start is None else END_KEYS)
            raise ProjectError(
                path,
                f"feature has no {missing} property",
                f"{key}.properties",
                hint="every feature needs es_start_time and es_end_time (ISO 8601)",
            )
        t0 = _parse_time(start[1], path, f"{key}.properties.{start[0]}")
        t1 = _parse_time(end[1], path, f"{key}.properties.{end[0]}")
        if t1 < t0:
            raise ProjectError(
                path, f"time range is reversed: {start[1]} > {end[1]}", f"{key}.properties"
            )
        try:
            geom = shapely.geometry.shape(raw.get("geometry"))
        except Exception as e:  # shapely raises several types for bad GeoJSON
            raise ProjectError(path, f"bad geometry: {e}", f"{key}.geometry") from None
        if geom.is_empty:
            raise ProjectError(path, "geometry is empty", f"{key}.geometry")
        minx, miny, maxx, maxy = geom.bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            raise ProjectError(
                path, f"coordinates out of lon/lat range: {geom.bounds}", f"{key}.geometry"
            )
        fid = feature_id(raw, i)
        if fid in seen:
            raise ProjectError(path, f"duplicate feature id {fid!r}", f"{key}.id")
        seen.add(fid)
        features.append(RequestFeature(fid, geom, (t0, t1), dict(props)))
    return features
