"""See before you spend: a summary, a GeoJSON and a PNG map of a plan, before any download."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import shapely
from PIL import Image, ImageDraw

from rslp.common.partitioners.interface import WindowSpec
from rslp.common.partitioners.projection import PixelGrid, split_antimeridian
from rslp.common.postprocessing.geotiff import PALETTE
from rslp.fsutil import atomic_path
from rslp.request import RequestFeature

MAX_DRAWN_WINDOWS = 50_000
# A plan of more windows gets plan/partitions.geojson instead of plan/windows.geojson.
MAX_LISTED_WINDOWS = 100_000

T = TypeVar("T")


@dataclass
class PartitionSummary:
    """Counts for one partition of a plan."""

    id: str
    windows: int = 0
    area_km2: float = 0.0
    crs: set[str] = field(default_factory=set)
    start: datetime | None = None
    end: datetime | None = None

    @staticmethod
    def from_index(entry: dict[str, Any]) -> PartitionSummary:
        """The summary the plan's index records for a partition (no window is read)."""
        return PartitionSummary(
            entry["id"],
            int(entry["num_windows"]),
            float(entry["area_km2"]),
            {e[0] for e in entry["extents"]},
            datetime.fromisoformat(entry["start"]) if entry.get("start") else None,
            datetime.fromisoformat(entry["end"]) if entry.get("end") else None,
        )

    def add(self, w: WindowSpec) -> None:
        """Count one window."""
        b = w.bounds
        self.windows += 1
        self.area_km2 += (b[2] - b[0]) * (b[3] - b[1]) * w.resolution**2 / 1e6
        self.crs.add(w.crs)
        t0, t1 = w.time_range
        self.start = t0 if self.start is None else min(self.start, t0)
        self.end = t1 if self.end is None else max(self.end, t1)


_T = np.linspace(0.0, 1.0, 5)[:-1]  # 4 points per edge: edges follow the projection


def windows_lonlat(windows: list[WindowSpec]) -> list[shapely.Polygon]:
    """The windows' outlines in lon/lat (edges densified), one transform per CRS."""
    out: list[shapely.Polygon | None] = [None] * len(windows)
    groups: dict[tuple[str, float], list[int]] = {}
    for i, w in enumerate(windows):
        groups.setdefault((w.crs, w.resolution), []).append(i)
    for (crs, res), idx in groups.items():
        b = np.asarray([windows[i].bounds for i in idx], dtype=float).reshape(-1, 4)
        c0, r0, c1, r1 = (b[:, k : k + 1] for k in range(4))
        n = len(idx)
        cols = np.hstack(
            [c0 + (c1 - c0) * _T, np.repeat(c1, 4, 1), c1 - (c1 - c0) * _T, np.repeat(c0, 4, 1)]
        )
        rows = np.hstack(
            [np.repeat(r0, 4, 1), r0 + (r1 - r0) * _T, np.repeat(r1, 4, 1), r1 - (r1 - r0) * _T]
        )
        lon, lat = PixelGrid(crs, res).pixels_to_lonlat(cols.ravel(), rows.ravel())
        rings = np.stack([lon.reshape(n, 16), lat.reshape(n, 16)], axis=-1)
        for i, poly in zip(idx, shapely.polygons(rings), strict=True):
            out[i] = poly
    return [p for p in out if p is not None]


def window_lonlat(w: WindowSpec) -> shapely.Polygon:
    """A window's outline in lon/lat (edges densified to follow the projection)."""
    return windows_lonlat([w])[0]


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_windows_geojson(
    path: Path,
    windows: Iterator[tuple[str, WindowSpec]],
    extra: Callable[[str, WindowSpec], dict[str, Any]] | None = None,
) -> None:
    """Stream an RFC 7946 FeatureCollection of the windows (lon/lat) to ``path``.

    ``extra(partition_id, window)`` adds properties to each window's feature.
    """
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        first = True
        for batch in _batches(windows, 4096):
            outlines = windows_lonlat([w for _, w in batch])
            for (pid, w), outline in zip(batch, outlines, strict=True):
                f.write(("" if first else ",\n") + _window_feature(pid, w, outline, extra))
                first = False
        f.write("\n]}\n")


def _window_feature(
    pid: str,
    w: WindowSpec,
    outline: shapely.Polygon,
    extra: Callable[[str, WindowSpec], dict[str, Any]] | None,
) -> str:
    geom = split_antimeridian(outline)
    feat: dict[str, Any] = {
        "type": "Feature",
        "properties": {
            "name": w.name,
            "partition": pid,
            "crs": w.crs,
            "bounds": list(w.bounds),
            "start": w.time_range[0].isoformat(),
            "end": w.time_range[1].isoformat(),
            "feature_ids": w.feature_ids,
            **(extra(pid, w) if extra is not None else {}),
        },
        "geometry": shapely.geometry.mapping(geom),
    }
    return json.dumps(feat, separators=(",", ":"))


def draw_preview(
    path: Path,
    features: list[RequestFeature],
    windows: list[tuple[int, shapely.Geometry]],
    label: str | None = None,
    size: int = 1024,
) -> None:
    """Draw request outlines (black) over windows coloured by partition, as a PNG.

    ``label`` says what was drawn (default: the number of windows).
    """
    geoms = [split_antimeridian(f.geometry) for f in features] + [g for _, g in windows]
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    pad = 0.05 * max(maxx - minx, maxy - miny, 1e-6)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    aspect = max(np.cos(np.radians((miny + maxy) / 2)), 0.05)  # shrink lon as on the ground
    scale = (size - 1) / max((maxx - minx) * aspect, maxy - miny)
    width = max(1, int((maxx - minx) * aspect * scale) + 1)
    height = max(1, int((maxy - miny) * scale) + 1)

    def xy(g: shapely.Geometry) -> list[list[tuple[float, float]]]:
        out = []
        for part in getattr(g, "geoms", [g]):
            ring = part.exterior.coords if hasattr(part, "exterior") else part.coords
            out.append([((x - minx) * aspect * scale, (maxy - y) * scale) for x, y in ring])
        return out

    img = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for idx, g in windows:
        r, gr, b = PALETTE[idx % len(PALETTE)]
        for ring in xy(g):
            draw.polygon(ring, fill=(r, gr, b, 90), outline=(r, gr, b, 255))
    img = Image.alpha_composite(img, layer)
    draw = ImageDraw.Draw(img)
    for g in geoms[: len(features)]:
        for ring in xy(g):
            if len(ring) == 1:
                x, y = ring[0]
                draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(0, 0, 0, 255), width=2)
            else:
                draw.line(ring, fill=(0, 0, 0, 255), width=2)
    from PIL import ImageFont

    draw.text(
        (8, 6),
        f"{len(features)} request features  |  {label or f'{len(windows)} windows drawn'}",
        fill=(0, 0, 0, 255),
        font=ImageFont.load_default(size=18),
    )
    with atomic_path(path) as tmp:
        img.convert("RGB").save(tmp, format="PNG")


@dataclass
class PlanReport:
    """What :func:`preview_plan` found and wrote."""

    partitions: list[PartitionSummary]
    geojson: Path
    png: Path
    listed: bool = True  # whether ``geojson`` lists windows (else partitions)

    @property
    def windows(self) -> int:
        """Total windows."""
        return sum(p.windows for p in self.partitions)

    @property
    def area_km2(self) -> float:
        """Total window area in km2."""
        return sum(p.area_km2 for p in self.partitions)

    def table(self) -> str:
        """A plain-text table of the partitions and a total line."""
        rows = [("partition", "windows", "km2", "crs", "start", "end")]
        for p in self.partitions:
            rows.append(
                (
                    p.id,
                    str(p.windows),
                    f"{p.area_km2:.1f}",
                    ",".join(sorted(p.crs)),
                    p.start.isoformat() if p.start else "",
                    p.end.isoformat() if p.end else "",
                )
            )
        rows.append(("total", str(self.windows), f"{self.area_km2:.1f}", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )


def preview_plan(ctx: Any, max_listed: int | None = None) -> PlanReport:
    """Plan a project's request and write ``plan/preview.png`` and a GeoJSON of the plan.

    The GeoJSON is ``plan/windows.geojson`` (one feature per window) for a plan of at most
    ``max_listed`` windows, else ``plan/partitions.geojson`` (one per partition: the
    outline of its windows, with its counts): a million windows' outlines make a file no
    one opens, and the windows are in ``plan/windows/<id>.jsonl`` already. The map draws
    at most :data:`MAX_DRAWN_WINDOWS` windows, evenly spread over the plan.

    Args:
        ctx: the :class:`~rslp.runner.context.RunContext`.
        max_listed: the most windows ``windows.geojson`` lists one by one (default
            :data:`MAX_LISTED_WINDOWS`).
    """
    from rslp.request import load_request
    from rslp.runner.partition import load_plan, partition_windows, run_partition

    max_listed = MAX_LISTED_WINDOWS if max_listed is None else max_listed
    run_partition(ctx)
    index = load_plan(ctx)["partitions"]
    summaries = [PartitionSummary.from_index(p) for p in index]
    total = sum(p.windows for p in summaries)
    plan_dir = ctx.scratch.plan_dir
    png = plan_dir / "preview.png"
    step = max(1, math.ceil(total / MAX_DRAWN_WINDOWS))
    drawn: list[tuple[int, shapely.Polygon]] = []
    label = f"{total} windows" + (f" (1 in {step} drawn)" if step > 1 else "")
    if total <= max_listed:
        geojson = plan_dir / "windows.geojson"

        def stream() -> Iterator[tuple[str, WindowSpec]]:
            for p in index:
                for w in partition_windows(ctx, p["id"]):
                    yield p["id"], w

        write_windows_geojson(geojson, stream())
        for i, p in enumerate(index):  # read again: a plan this small reads in milliseconds
            ws = partition_windows(ctx, p["id"])[::step]
            drawn += [(i, g) for g in windows_lonlat(ws)]
    else:
        geojson = plan_dir / "partitions.geojson"
        drawn = list(enumerate(write_partitions_geojson(geojson, index)))
        label = f"{total} windows in {len(index)} partitions (partitions drawn)"
    for stale in {plan_dir / "windows.geojson", plan_dir / "partitions.geojson"} - {geojson}:
        stale.unlink(missing_ok=True)
    draw_preview(png, load_request(ctx.files.request_geojson), drawn, label)
    return PlanReport(summaries, geojson, png, listed=total <= max_listed)


def write_partitions_geojson(path: Path, index: list[dict[str, Any]]) -> list[shapely.Geometry]:
    """A lon/lat FeatureCollection of partitions: the pixel extent of each one's windows.

    Args:
        path: where to write.
        index: the plan index's partitions (:func:`~rslp.runner.partition.build_plan`).

    Returns:
        each partition's outline.
    """
    shapes = []
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        for n, p in enumerate(index):
            extents = [
                WindowSpec("", crs, res, (c0, r0, c1, r1), (_EPOCH, _EPOCH))
                for crs, res, c0, r0, c1, r1 in p["extents"]
            ]
            outlines = [split_antimeridian(g) for g in windows_lonlat(extents)]
            geom = outlines[0] if len(outlines) == 1 else shapely.union_all(outlines)
            shapes.append(geom)
            feat = {
                "type": "Feature",
                "properties": {
                    "partition": p["id"],
                    "windows": p["num_windows"],
                    "area_km2": round(p["area_km2"], 3),
                    "crs": sorted({e[0] for e in p["extents"]}),
                    "start": p["start"],
                    "end": p["end"],
                    "feature_ids": p["feature_ids"],
                },
                "geometry": shapely.geometry.mapping(geom),
            }
            f.write(("" if n == 0 else ",\n") + json.dumps(feat, separators=(",", ":")))
        f.write("\n]}\n")
    return shapes


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
