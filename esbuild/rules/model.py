"""Rules on model.yaml as a whole: placeholders, a real rslearn parse, the checkpoint."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from esbuild.diagnostics import Diagnostic
from esbuild.rules.context import ProjectDocs

PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Z][A-Z0-9_]*)\}")
PARSER_KEY = re.compile(r'(?:Parser key|key) "([\w.\[\]]+)"')


def check_placeholders(project: ProjectDocs) -> list[Diagnostic]:
    """``{NAME}`` left in model.yaml (``${NAME}`` is rslearn's environment substitution)."""
    doc = project.docs.get("model.yaml")
    if doc is None or not doc.path.exists():
        return []
    out = []
    for n, line in enumerate(doc.path.read_text().splitlines(), 1):
        for m in PLACEHOLDER.finditer(line):
            out.append(
                Diagnostic(
                    doc.path,
                    f"unfilled placeholder {m.group(0)}",
                    line=n,
                    hint=f"fill in the value, or write ${{{m.group(1)}}} for an environment value",
                    rule="placeholder",
                )
            )
    return out


@contextlib.contextmanager
def _sandbox() -> Iterator[Path]:
    """A temporary cwd and DATASET_PATH, so parsing writes nothing into the project."""
    from rslp.runner.inference import DATASET_PATH_VAR, env_var

    with (
        tempfile.TemporaryDirectory() as tmp,
        env_var(DATASET_PATH_VAR, tmp),
        contextlib.chdir(tmp),
    ):
        yield Path(tmp)


@lru_cache(maxsize=8)
def _parse_cached(text: str, path: Path) -> tuple[Any, str | None]:
    return _parse(path)


def parse_model(path: Path) -> tuple[Any, str | None]:
    """:func:`_parse`, remembered by file content (validation is often repeated in-process)."""
    return _parse_cached(path.read_text(), path)


def _parse(path: Path) -> tuple[Any, str | None]:
    """Parse and instantiate model.yaml with rslearn's LightningCLI (nothing is trained).

    Returns:
        (the LightningCLI object or None, an error message or None).
    """
    from rslp.errors import StepError
    from rslp.runner.inference import lightning_cli

    args = [
        "--config", str(path.resolve()),
        "--trainer.strategy=auto", "--trainer.devices=1", "--trainer.logger=false",
    ]  # fmt: skip
    with _sandbox():
        try:
            cli = lightning_cli(args, False, "validate", "rslearn cannot parse model.yaml")
        except StepError as e:
            return None, str(e).split("] ", 1)[-1]
        except Exception as e:  # a constructor raising on its arguments
            return None, f"rslearn cannot instantiate model.yaml: {type(e).__name__}: {e}"
    return cli, None


def check_lightning_parse(project: ProjectDocs) -> list[Diagnostic]:
    """model.yaml parses and instantiates as an rslearn Lightning config."""
    doc = project.docs.get("model.yaml")
    if doc is None or not isinstance(doc.data, dict):
        return []
    if any(d.file == doc.path and d.severity == "error" for d in project.found):
        return []  # its class paths or placeholders are already reported
    cli, err = parse_model(doc.path)
    project.model_cli = cli
    if err is None:
        return []
    m = PARSER_KEY.search(err)
    key = tuple(m.group(1).split(".")) if m else ()
    return [
        doc.diag(
            err,
            key,
            hint="run 'rslearn model fit --config model.yaml --print_config'",
            rule="model",
        )
    ]


def check_checkpoint(project: ProjectDocs) -> list[Diagnostic]:
    """The checkpoint is not empty; with ``deep``, its weights load into the model."""
    ckpt = project.checkpoint
    if ckpt is None:
        return []
    if ckpt.stat().st_size == 0:
        return [
            Diagnostic(
                ckpt,
                "checkpoint file is empty",
                hint="train the model, or remove the file",
                rule="checkpoint",
            )
        ]
    with ckpt.open("rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        return [
            Diagnostic(
                ckpt,
                "not a PyTorch checkpoint (neither a zip nor a pickle file)",
                hint="save it with torch.save or Lightning",
                rule="checkpoint",
            )
        ]
    if not project.deep:
        return []
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        return [
            Diagnostic(
                ckpt, f"checkpoint does not load: {type(e).__name__}: {e}", rule="checkpoint"
            )
        ]
    cli = getattr(project, "model_cli", None)
    if cli is None:
        return []  # model.yaml did not parse; already reported
    weights = state.get("state_dict", state) if isinstance(state, dict) else {}
    own = cli.model.state_dict()
    missing = sorted(k for k in own if k not in weights)
    unexpected = sorted(k for k in weights if k not in own)
    shapes = [
        f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in weights.items()
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing weights {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected[:5]}")
    if shapes:
        problems.append(f"shape mismatches {shapes[:5]}")
    if not problems:
        return []
    return [
        Diagnostic(
            ckpt,
            "checkpoint does not fit model.yaml: " + "; ".join(problems),
            hint="train with this model.yaml, or fix the architecture",
            rule="checkpoint",
        )
    ]
