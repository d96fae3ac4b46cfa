"""See before you spend: a summary, a GeoJSON and a PNG map of a plan, before any download."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from PIL import Image, ImageDraw

from rslp.common.partitioners.interface import WindowSpec
from rslp.common.partitioners.projection import PixelGrid, split_antimeridian
from rslp.common.postprocessing.geotiff import PALETTE
from rslp.fsutil import atomic_path
from rslp.request import RequestFeature

MAX_DRAWN_WINDOWS = 50_000


@dataclass
class PartitionSummary:
    """Counts for one partition of a plan."""

    id: str
    windows: int = 0
    area_km2: float = 0.0
    crs: set[str] = field(default_factory=set)
    start: datetime | None = None
    end: datetime | None = None

    def add(self, w: WindowSpec) -> None:
        """Count one window."""
        b = w.bounds
        self.windows += 1
        self.area_km2 += (b[2] - b[0]) * (b[3] - b[1]) * w.resolution**2 / 1e6
        self.crs.add(w.crs)
        t0, t1 = w.time_range
        self.start = t0 if self.start is None else min(self.start, t0)
        self.end = t1 if self.end is None else max(self.end, t1)


def window_lonlat(w: WindowSpec) -> shapely.Polygon:
    """A window's outline in lon/lat (edges densified to follow the projection)."""
    b = w.bounds
    t = np.linspace(0.0, 1.0, 5)[:-1]
    cols = np.concatenate(
        [b[0] + (b[2] - b[0]) * t, np.full(4, b[2]), b[2] - (b[2] - b[0]) * t, np.full(4, b[0])]
    )
    rows = np.concatenate(
        [np.full(4, b[1]), b[1] + (b[3] - b[1]) * t, np.full(4, b[3]), b[3] - (b[3] - b[1]) * t]
    )
    lon, lat = PixelGrid(w.crs, w.resolution).pixels_to_lonlat(cols, rows)
    return shapely.Polygon(np.column_stack([lon, lat]))


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
        for pid, w in windows:
            geom = split_antimeridian(window_lonlat(w))
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
            f.write(("" if first else ",\n") + json.dumps(feat, separators=(",", ":")))
            first = False
        f.write("\n]}\n")


def draw_preview(
    path: Path,
    features: list[RequestFeature],
    windows: list[tuple[int, shapely.Polygon]],
    size: int = 1024,
) -> None:
    """Draw request outlines (black) over windows coloured by partition, as a PNG."""
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
        f"{len(features)} request features  |  {len(windows)} windows drawn",
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


def preview_plan(ctx: Any) -> PlanReport:
    """Plan a project's request and write ``plan/windows.geojson`` and ``plan/preview.png``.

    Args:
        ctx: the :class:`~rslp.runner.context.RunContext`.
    """
    from rslp.request import load_request
    from rslp.runner.partition import load_plan, partition_windows, run_partition

    run_partition(ctx)
    ids = [p["id"] for p in load_plan(ctx)["partitions"]]
    summaries = [PartitionSummary(pid) for pid in ids]
    drawn: list[tuple[int, shapely.Polygon]] = []

    def stream() -> Iterator[tuple[str, WindowSpec]]:
        for i, (pid, summary) in enumerate(zip(ids, summaries, strict=True)):
            for w in partition_windows(ctx, pid):
                summary.add(w)
                if len(drawn) < MAX_DRAWN_WINDOWS:
                    drawn.append((i, window_lonlat(w)))
                yield pid, w

    plan_dir = ctx.scratch.plan_dir
    geojson, png = plan_dir / "windows.geojson", plan_dir / "preview.png"
    write_windows_geojson(geojson, stream())
    draw_preview(png, load_request(ctx.files.request_geojson), drawn)
    return PlanReport(summaries, geojson, png)
