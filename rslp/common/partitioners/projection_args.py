"""A partitioner's own projection: the reference runner's ``output_projection`` and ``use_utm``.

The reference runner's partitioners take the projection windows live in as arguments:
``output_projection`` is an rslearn ``Projection`` (CRS, x and y resolution), written in a
config as a ``class_path``/``init_args`` mapping or as a ``_module_``/``_callable_``
factory mapping (the callable's keyword arguments beside them), and ``use_utm: true``
keeps only its resolution and puts each feature in its UTM zone. This module reads those
forms into ``(crs or None, resolution)``.

This runner's grids are square and north-up (``y_resolution == -x_resolution``); other
projections are refused with a message naming the values.
"""

from __future__ import annotations

import importlib
from typing import Any

from pyproj import CRS

PROJECTION_CLASSES = ("rslearn.utils.Projection", "rslearn.utils.geometry.Projection")


def _call(path: str, member: str | None, kwargs: dict[str, Any]) -> Any:
    """Import ``path`` (module.attr when ``member`` is None) and call it with ``kwargs``."""
    if member is None:
        module_name, _, member = path.rpartition(".")
    else:
        module_name = path
    try:
        obj: Any = importlib.import_module(module_name)
        for part in member.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import {module_name}:{member}: {e}") from None
    try:
        return obj(**{k: _build(v) for k, v in kwargs.items()})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{module_name}.{member}({kwargs}) failed: {e}") from None


def _build(value: Any) -> Any:
    """A config value with nested class_path and factory mappings constructed."""
    if not isinstance(value, dict):
        return value
    if "_module_" in value and "_callable_" in value:
        rest = {k: v for k, v in value.items() if k not in ("_module_", "_callable_")}
        return _call(str(value["_module_"]), str(value["_callable_"]), rest)
    if isinstance(value.get("class_path"), str):
        path = value["class_path"]
        args = value.get("init_args") or {}
        if path in PROJECTION_CLASSES:  # no need to import rslearn to read three numbers
            return _fields({k: _build(v) for k, v in args.items()})
        return _call(path, None, dict(args))
    return value


def _fields(obj: Any) -> tuple[Any, Any, Any]:
    if isinstance(obj, dict):
        return obj.get("crs"), obj.get("x_resolution"), obj.get("y_resolution")
    if isinstance(obj, tuple) and len(obj) == 3:
        return obj
    return (
        getattr(obj, "crs", None),
        getattr(obj, "x_resolution", None),
        getattr(obj, "y_resolution", None),
    )


def parse_output_projection(value: Any) -> tuple[str, float]:
    """An ``output_projection`` value (mapping or rslearn Projection) as ``(crs, resolution)``.

    Raises:
        ValueError: saying what was expected.
    """
    crs, xres, yres = _fields(_build(value))
    if crs is None or xres is None:
        raise ValueError(
            "output_projection needs crs, x_resolution and y_resolution (an rslearn "
            f"Projection as class_path/init_args or a _module_/_callable_ mapping), got {value!r}"
        )
    try:
        crs_text = CRS.from_user_input(crs).to_string()
    except Exception as e:  # pyproj's CRSError, or a type it cannot read
        raise ValueError(f"output_projection crs {crs!r} is not a CRS: {e}") from None
    try:
        x = float(xres)
        y = float(yres) if yres is not None else -x
    except (TypeError, ValueError):
        raise ValueError(
            f"output_projection resolutions must be numbers, got {xres!r}, {yres!r}"
        ) from None
    if not x > 0 or y != -x:
        raise ValueError(
            "output_projection must be north-up with square pixels (x_resolution > 0 and "
            f"y_resolution == -x_resolution), got x_resolution={xres}, y_resolution={yres}"
        )
    return crs_text, x


def check_projection_args(output_projection: Any, use_utm: Any) -> tuple[str | None, float] | None:
    """The ``(crs, resolution)`` a partitioner's arguments set, or None when they set none.

    ``crs`` is None for ``use_utm`` (each feature's UTM zone); with ``use_utm`` and no
    ``output_projection`` the resolution is NaN (the project's resolution applies).
    """
    if not isinstance(use_utm, bool):
        raise ValueError(f"use_utm must be true or false, got {use_utm!r}")
    if output_projection is None:
        return (None, float("nan")) if use_utm else None
    crs, res = parse_output_projection(output_projection)
    return (None if use_utm else crs), res
