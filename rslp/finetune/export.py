"""The fine-tuned model as a new project version, ready for esbuild validate/lock/build/publish.

The new project directory is the project with ``checkpoint.ckpt`` replaced by the
fine-tuned one, plus ``metrics.json`` (before/after on the validation split) and
``MODEL_CARD.md`` (base checkpoint digest, label counts, splits, metrics, how to publish).
``esbuild build`` labels its image with the checkpoint's SHA-256 and the validation
accuracy. Publishing it under the next ``<project>_v<version>`` tag gives the new version's
image tags.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rslp.errors import ProjectError, StepError
from rslp.finetune.context import FinetuneContext
from rslp.finetune.steps import CHECKPOINT, METRICS_JSON, check_current
from rslp.fsutil import copy_project, new_dir, sha256_file

MODEL_CARD = "MODEL_CARD.md"


def next_version(repo: Path, project: str) -> str:
    """The version after the highest ``<project>_v<major>.<minor>.<patch>`` git tag (minor +1).

    ``1.0.0`` when there is none (or no git).
    """
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "tag", "--list", f"{project}_v*"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    best: tuple[int, int, int] | None = None
    for tag in out.split():
        m = re.fullmatch(rf"{re.escape(project)}_v(\d+)\.(\d+)\.(\d+)", tag)
        if m:
            v = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            best = v if best is None or v > best else best
    return "1.0.0" if best is None else f"{best[0]}.{best[1] + 1}.0"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def model_card(name: str, metrics: dict[str, Any], version: str, ctx: FinetuneContext) -> str:
    """The model card's Markdown (``version``: the source project's next version)."""
    src = ctx.files.project_dir.name
    before, after = metrics["before"], metrics["after"]
    base = metrics.get("base_checkpoint") or {}
    lines = [
        f"# {name}: fine-tuned model",
        "",
        f"Fine-tuned by `esrunner finetune` on {datetime.now(UTC).strftime('%Y-%m-%d')} from "
        f"`{ctx.files.project_dir.name}`.",
        "",
        f"- base checkpoint: `{base.get('path', 'none')}` sha256 `{base.get('sha256', '-')}`",
        f"- fine-tuned checkpoint: `checkpoint.ckpt` sha256 `{metrics['checkpoint_sha256']}`",
        f"- best epoch by `{metrics.get('monitor')}`: {metrics.get('best_epoch')}",
        f"- validation accuracy: {_pct(before['accuracy'])} before, {_pct(after['accuracy'])} "
        "after",
        "",
        "## Labels and splits",
        "",
        "| split | windows | labels |",
        "| --- | --- | --- |",
    ]
    splits = metrics["splits"]
    for s, n in splits["windows"].items():
        labels = ", ".join(f"{k}: {v}" for k, v in splits["labels"].get(s, {}).items()) or "-"
        lines.append(f"| {s} | {n} | {labels} |")
    lines += [
        "",
        "## Validation metrics",
        "",
        "| class | F1 before | F1 after | IoU before | IoU after | support |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c, a in after["per_class"].items():
        b = before["per_class"].get(c, {})
        lines.append(
            f"| {c} | {b.get('f1', 0):.3f} | {a['f1']:.3f} | {b.get('iou', 0):.3f} | "
            f"{a['iou']:.3f} | {a['support']} |"
        )
    lines += [
        "",
        "## Publish",
        "",
        f"As the next version of `{src}`: put this directory in place of `data/{src}`, then",
        "",
        "```",
        f"esbuild validate data/{src} && esbuild lock data/{src} && esbuild build data/{src}",
        f"git commit -am '{src}: fine-tuned' && git tag {src}_v{version} && git push --tags",
        "```",
        "",
        f"(or keep it as a project of its own, `data/{name}`, tagged `{name}_v1.0.0`).",
        "",
    ]
    return "\n".join(lines)


def export(ctx: FinetuneContext, out: Path) -> Path:
    """Write the project version at ``out`` (a new directory); returns ``out``.

    Raises:
        StepError: when the fine-tune has not been evaluated yet.
        ProjectError: when ``out`` exists.
    """
    root = ctx.scratch.root
    tuned, metrics_file = root / CHECKPOINT, root / METRICS_JSON
    if not tuned.is_file() or not metrics_file.is_file():
        raise StepError("finetune", "nothing to export: run fit and evaluate first")
    metrics = json.loads(metrics_file.read_text())
    if metrics.get("checkpoint_sha256") != sha256_file(tuned):
        raise StepError("finetune", "checkpoint.ckpt changed since evaluate: run evaluate again")
    check_current(ctx, metrics.get("fit_inputs"), "metrics.json")
    out = out.resolve()
    if out.exists():
        raise ProjectError(out, "already exists; give a new directory")
    src = ctx.files.project_dir
    version = next_version(src.parent.parent, src.name)
    with new_dir(out) as staging:
        copy_project(src, staging, {"checkpoint.ckpt", METRICS_JSON, MODEL_CARD}, set())
        shutil.copyfile(tuned, staging / "checkpoint.ckpt")
        (staging / METRICS_JSON).write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
        (staging / MODEL_CARD).write_text(model_card(out.name, metrics, version, ctx))
    return out
