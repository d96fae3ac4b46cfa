"""Labeled window preparers: one annotation task -> labeled rslearn windows.

- :class:`PointToRasterWindowPreparer`: a square window around each labeled point, its
  label raster nodata except the point's pixel. Use it for segmentation from point labels.
- :class:`PolygonToRasterWindowPreparer`: the task's region (or a grid over it) as windows,
  labeled polygons rasterized into them. Use it for segmentation from drawn polygons.
- :class:`PointToPixelWindowPreparer`: a one-pixel window per point, labeled by a vector
  feature. Use it for per-window classification.

Windows live in the UTM zone of their point (or of the task's centre) at
``window_resolution`` metres per pixel, named from the task and the annotation, so the same
annotations always give the same windows.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from rslp.common.partitioners.projection import PixelGrid, bounds_of, lonlat_to_pixels, utm_crs_for
from rslp.finetune.annotations import Annotation, AnnotationTask

# annotation -> its class value
LabelOf = Callable[[Annotation], Any]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
DTYPES = ("uint8", "uint16", "int16", "int32", "float32")


@dataclass
class LabeledWindow:
    """A window to train on, with its labels.

    Attributes:
        name: deterministic, path-safe name.
        task_id: the annotation task it came from.
        crs: its CRS.
        resolution: CRS units per pixel.
        bounds: pixel bounds ``(col0, row0, col1, row1)``.
        time_range: the task's time range.
        raster: the label raster ``(h, w)`` for raster labels, else None.
        nodata: the raster's nodata value.
        points: for vector labels, ``(lon, lat, value)`` of each labeled point.
        values: the class value of every label (for counts and checks).
    """

    name: str
    task_id: str
    crs: str
    resolution: float
    bounds: tuple[int, int, int, int]
    time_range: tuple[datetime, datetime]
    raster: np.ndarray | None = None
    nodata: float | None = None
    points: list[tuple[float, float, Any]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def safe(text: str) -> str:
    """``text`` as a path-safe name component."""
    return _UNSAFE.sub("-", text).strip("-") or "x"


class LabeledWindowPreparer(ABC):
    """Turns one annotation task into labeled windows.

    ``LABELS`` says what the windows carry: ``raster`` (a label raster for a raster label
    layer) or ``vector`` (labeled points for a vector label layer).
    """

    LABELS = "raster"

    @abstractmethod
    def prepare(self, task: AnnotationTask, label_of: LabelOf) -> list[LabeledWindow]:
        """The task's labeled windows (none for a task without annotations)."""


def _check_resolution(window_resolution: Any) -> float:
    if isinstance(window_resolution, bool) or not isinstance(window_resolution, int | float):
        raise ValueError(f"window_resolution must be a number, got {window_resolution!r}")
    if not (math.isfinite(window_resolution) and window_resolution > 0):
        raise ValueError(f"window_resolution must be > 0, got {window_resolution!r}")
    return float(window_resolution)


def _check_dtype(dtype: Any) -> str:
    d = str(dtype).lower()
    if d not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return d


def _pixel(p: Point, resolution: float) -> tuple[str, int, int]:
    """The UTM zone of a lon/lat point and the (column, row) of its pixel there."""
    crs = utm_crs_for(p.x, p.y)
    px = PixelGrid(crs, resolution).to_pixels(p)
    return crs, math.floor(px.x), math.floor(px.y)


def _check_nodata(nodata: Any, dtype: str) -> Any:
    """``nodata`` must be a number the label raster's type holds."""
    if isinstance(nodata, bool) or not isinstance(nodata, int | float):
        raise ValueError(f"nodata_value must be a number, got {nodata!r}")
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(np.dtype(dtype))
        if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise ValueError(f"nodata_value {nodata} does not fit dtype {dtype}")
    return nodata


def _point(annotation: Annotation, task: AnnotationTask) -> Point:
    g = annotation.geometry
    if not isinstance(g, Point):
        raise ValueError(
            f"annotation {annotation.index} of task {task.task_id} is a {g.geom_type}; "
            "this preparer needs points"
        )
    return g


class PointToRasterWindowPreparer(LabeledWindowPreparer):
    """A ``(2 * window_buffer + 1)`` pixel square window centred on each labeled point.

    The label raster is ``nodata_value`` except the point's pixel, which holds its class:
    the model's task must ignore ``nodata_value`` (e.g. SegmentationTask ``nodata_value``).

    Args:
        window_buffer: pixels on each side of the point (31 gives 63 x 63 windows).
        window_resolution: metres per pixel.
        dtype: the label raster's type (uint8, uint16, int16, int32, float32).
        nodata_value: the value of unlabeled pixels.
    """

    def __init__(
        self, window_buffer: int, window_resolution: float, dtype: str, nodata_value: int
    ) -> None:
        if (
            isinstance(window_buffer, bool)
            or not isinstance(window_buffer, int)
            or window_buffer < 0
        ):
            raise ValueError(f"window_buffer must be a whole number >= 0, got {window_buffer!r}")
        self.window_buffer = window_buffer
        self.window_resolution = _check_resolution(window_resolution)
        self.dtype = _check_dtype(dtype)
        self.nodata_value = _check_nodata(nodata_value, self.dtype)

    def prepare(self, task: AnnotationTask, label_of: LabelOf) -> list[LabeledWindow]:
        """One window per point annotation of the task."""
        out = []
        b = self.window_buffer
        for a in task.annotations:
            crs, col, row = _pixel(_point(a, task), self.window_resolution)
            raster = np.full((2 * b + 1, 2 * b + 1), self.nodata_value, dtype=self.dtype)
            value = label_of(a)
            raster[b, b] = value
            out.append(
                LabeledWindow(
                    name=f"task_{safe(task.task_id)}_point_{a.index}",
                    task_id=task.task_id,
                    crs=crs,
                    resolution=self.window_resolution,
                    bounds=(col - b, row - b, col + b + 1, row + b + 1),
                    time_range=task.time_range,
                    raster=raster,
                    nodata=self.nodata_value,
                    values=[value],
                )
            )
        return out


class PolygonToRasterWindowPreparer(LabeledWindowPreparer):
    """The task's region as windows, with its labeled polygons rasterized.

    Pixels under a polygon take its class; others ``nodata_value``. Without ``grid_config``
    the window is the region's bounds; with ``grid_config: {window_size_px: N}`` the bounds
    are cut into N-pixel cells (cells on a grid aligned to pixel 0; those the region does
    not touch are left out).

    Args:
        window_resolution: metres per pixel.
        dtype: the label raster's type.
        nodata_value: the value of unlabeled pixels.
        grid_config: ``{window_size_px: N}`` (the reference's other keys are accepted).
    """

    def __init__(
        self,
        window_resolution: float,
        dtype: str = "uint8",
        nodata_value: int = 255,
        grid_config: dict[str, Any] | None = None,
    ) -> None:
        self.window_resolution = _check_resolution(window_resolution)
        self.dtype = _check_dtype(dtype)
        self.nodata_value = _check_nodata(nodata_value, self.dtype)
        size = (grid_config or {}).get("window_size_px")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(
                f"grid_config.window_size_px must be a whole number >= 1, got {size!r}"
            )
        self.window_size = size

    def prepare(self, task: AnnotationTask, label_of: LabelOf) -> list[LabeledWindow]:
        """The region's window(s) with the task's polygons rasterized."""
        if not task.annotations:
            return []
        c = task.geometry.centroid
        grid = PixelGrid(utm_crs_for(c.x, c.y), self.window_resolution)
        region = lonlat_to_pixels(task.geometry, grid)
        shapes: list[tuple[BaseGeometry, Any]] = []
        values = []
        for a in task.annotations:
            if a.geometry.area == 0:
                raise ValueError(
                    f"annotation {a.index} of task {task.task_id} is a {a.geometry.geom_type}; "
                    "this preparer needs polygons"
                )
            value = label_of(a)
            shapes.append((lonlat_to_pixels(a.geometry, grid), value))
            values.append(value)
        x0, y0, x1, y1 = bounds_of(region)
        n = self.window_size
        cells = (
            [(x0, y0, x1, y1)]
            if n is None
            else [
                (cx, cy, cx + n, cy + n)
                for cx in range(math.floor(x0 / n) * n, x1, n)
                for cy in range(math.floor(y0 / n) * n, y1, n)
                if shapely.box(cx, cy, cx + n, cy + n).intersects(region)
            ]
        )
        out = []
        for b in cells:
            w, h = b[2] - b[0], b[3] - b[1]
            raster = rasterize(
                shapes,
                out_shape=(h, w),
                transform=Affine.translation(b[0], b[1]),
                fill=self.nodata_value,
                dtype=self.dtype,
            )
            present = [v for v in values if (raster == v).any()]
            if not present:
                continue
            out.append(
                LabeledWindow(
                    name=f"task_{safe(task.task_id)}_{b[0]}_{b[1]}",
                    task_id=task.task_id,
                    crs=grid.crs,
                    resolution=self.window_resolution,
                    bounds=b,
                    time_range=task.time_range,
                    raster=raster,
                    nodata=self.nodata_value,
                    values=present,
                )
            )
        return out


class PointToPixelWindowPreparer(LabeledWindowPreparer):
    """A one-pixel window on each labeled point, labeled by a vector feature (the point).

    Args:
        window_resolution: metres per pixel.
    """

    LABELS = "vector"

    def __init__(self, window_resolution: float = 10.0) -> None:
        self.window_resolution = _check_resolution(window_resolution)

    def prepare(self, task: AnnotationTask, label_of: LabelOf) -> list[LabeledWindow]:
        """One window per point annotation of the task."""
        out = []
        for a in task.annotations:
            p = _point(a, task)
            crs, col, row = _pixel(p, self.window_resolution)
            value = label_of(a)
            out.append(
                LabeledWindow(
                    name=f"task_{safe(task.task_id)}_point_{a.index}",
                    task_id=task.task_id,
                    crs=crs,
                    resolution=self.window_resolution,
                    bounds=(col, row, col + 1, row + 1),
                    time_range=task.time_range,
                    points=[(p.x, p.y, value)],
                    values=[value],
                )
            )
        return out
