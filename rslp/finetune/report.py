"""``report.png``: the confusion matrices before and after fine-tuning, and the loss curve."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from rslp.fsutil import atomic_path

CELL = 44
PAD = 12
TEXT = (0, 0, 0)


def _matrix(draw: ImageDraw.ImageDraw, x: int, y: int, title: str, m: dict[str, Any]) -> int:
    """Draw one confusion matrix (row-normalised shading, counts written); returns its width."""
    cm = m["confusion_matrix"]
    names = m["classes"]
    draw.text((x, y), f"{title}: accuracy {m['accuracy']:.3f}", fill=TEXT)
    top = y + 18
    left = x + 70
    for j, name in enumerate(names):
        draw.text((left + j * CELL + 2, top), str(name)[:7], fill=TEXT)
    top += 14
    for i, row in enumerate(cm):
        draw.text((x, top + i * CELL + CELL // 2 - 6), str(names[i])[:10], fill=TEXT)
        total = max(1, sum(row))
        for j, v in enumerate(row):
            shade = int(255 - 200 * v / total)
            color = (shade, shade, 255) if i == j else (255, shade, shade)
            box = (
                left + j * CELL,
                top + i * CELL,
                left + (j + 1) * CELL - 2,
                top + (i + 1) * CELL - 2,
            )
            draw.rectangle(box, fill=color, outline=(120, 120, 120))
            draw.text((box[0] + 4, box[1] + CELL // 2 - 8), str(v), fill=TEXT)
    draw.text((left, top + len(cm) * CELL + 2), "predicted ->  (rows: true)", fill=TEXT)
    return 70 + CELL * max(1, len(names))


def loss_curve(logs: Path) -> dict[str, list[tuple[int, float]]]:
    """``train_loss`` and ``val_loss`` by epoch from the CSV logs (later attempts win)."""
    series: dict[str, dict[int, float]] = {"train_loss": {}, "val_loss": {}}
    acc: dict[int, list[float]] = {}
    for f in sorted(logs.glob("fit*/metrics.csv")):
        with f.open() as fh:
            for row in csv.DictReader(fh):
                epoch = row.get("epoch")
                if not epoch:
                    continue
                e = int(float(epoch))
                for key in ("train_loss_epoch", "train_loss", "val_loss"):
                    v = row.get(key)
                    if v:
                        name = "val_loss" if key == "val_loss" else "train_loss"
                        if key == "train_loss":
                            acc.setdefault(e, []).append(float(v))
                        else:
                            series[name][e] = float(v)
    for e, vals in acc.items():
        series["train_loss"].setdefault(e, sum(vals) / len(vals))
    return {k: sorted(v.items()) for k, v in series.items()}


def _curve(draw: ImageDraw.ImageDraw, x: int, y: int, w: int, h: int, curves: dict) -> None:
    draw.text((x, y), "loss by epoch (blue: train, orange: val)", fill=TEXT)
    y += 18
    draw.rectangle((x, y, x + w, y + h), outline=(120, 120, 120))
    pts = [v for c in curves.values() for _, v in c]
    epochs = [e for c in curves.values() for e, _ in c]
    if not pts:
        draw.text((x + 8, y + 8), "no loss logged", fill=TEXT)
        return
    lo, hi = min(pts), max(pts)
    e0, e1 = min(epochs), max(max(epochs), min(epochs) + 1)
    draw.text((x + 4, y + 2), f"{hi:.3g}", fill=TEXT)
    draw.text((x + 4, y + h - 14), f"{lo:.3g}", fill=TEXT)
    draw.text((x + w - 60, y + h + 2), f"epoch {e1}", fill=TEXT)
    colors = {"train_loss": (31, 119, 180), "val_loss": (255, 127, 14)}
    for name, c in curves.items():
        xy = [
            (x + (e - e0) / (e1 - e0) * w, y + h - (v - lo) / max(hi - lo, 1e-12) * h) for e, v in c
        ]
        if len(xy) > 1:
            draw.line(xy, fill=colors[name], width=2)
        for px, py in xy:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colors[name])


def write_report(out: Path, before: dict[str, Any], after: dict[str, Any], logs: Path) -> Path:
    """Draw both confusion matrices and the loss curve into ``out`` (PNG, atomically)."""
    n = len(before["classes"])
    mw = 70 + CELL * max(1, n)
    mh = 18 + 14 + CELL * n + 18
    width = max(2 * mw + 3 * PAD, 480)
    height = PAD + mh + PAD + 18 + 180 + 30
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    _matrix(draw, PAD, PAD, "before", before)
    _matrix(draw, 2 * PAD + mw, PAD, "after", after)
    _curve(draw, PAD, 2 * PAD + mh, width - 2 * PAD, 180, loss_curve(logs))
    with atomic_path(out) as tmp:
        img.save(tmp, format="PNG")
    return out
