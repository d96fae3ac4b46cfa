"""Rules on model.yaml as a whole: placeholders, a real rslearn parse, the checkpoint."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs

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


def check_writer_path(project: ProjectDocs) -> list[Diagnostic]:
    """A writer ``path`` other than ``${DATASET_PATH}`` (e.g. ``placeholder``) is replaced."""
    from rslp.nested import dig
    from rslp.runner.context import find_writer

    doc = project.docs.get("model.yaml")
    found = find_writer(doc.data) if doc is not None else None
    if doc is None or found is None:
        return []
    idx, cb = found
    path = dig(cb, "init_args", "path")
    if path is None or path == "${DATASET_PATH}":
        return []
    return [
        doc.diag(
            f"RslearnWriter path {path!r} is replaced by the run's scratch dataset",
            ("trainer", "callbacks", idx, "init_args", "path"),
            hint="write path: ${DATASET_PATH} to say so",
            rule="writer",
            severity="warning",
        )
    ]


@contextlib.contextmanager
def _sandbox(project_dir: Path) -> Iterator[Path]:
    """A temporary cwd, dataset and trainer dir, so parsing writes nothing into the project.

    The template variables a run sets (:mod:`rslp.templates`) are set as a run sets them.
    """
    from rslp.templates import template_env, template_values

    with tempfile.TemporaryDirectory() as tmp:
        values = template_values(project_dir, Path(tmp), Path(tmp) / "trainer")
        with template_env(values), contextlib.chdir(tmp):
            yield Path(tmp)


@lru_cache(maxsize=8)
def _parse_cached(text: str, path: Path, project_dir: Path) -> tuple[Any, str | None]:
    return _parse(path, project_dir)


def parse_model(path: Path, project_dir: Path | None = None) -> tuple[Any, str | None]:
    """:func:`_parse`, remembered by file content (validation is often repeated in-process).

    ``project_dir`` (default: model.yaml's directory) is what the template variables
    point into; a unified project's transpiled model.yaml lives elsewhere.
    """
    return _parse_cached(path.read_text(), path, project_dir or path.resolve().parent)


def _parse(path: Path, project_dir: Path) -> tuple[Any, str | None]:
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
    with _sandbox(project_dir):
        try:
            cli = lightning_cli(args, False, "validate", "rslearn cannot parse model.yaml")
        except StepError as e:
            return None, str(e).split("] ", 1)[-1]
        except Exception as e:  # a constructor raising on its arguments
            return None, f"rslearn cannot instantiate model.yaml: {type(e).__name__}: {e}"
    return cli, None


def _encoder_bundle(project: ProjectDocs, model: dict[str, Any]) -> str | None:
    """The project's own OlmoEarth ``config.json`` an encoder of model.yaml is built from."""
    from rslp.checks.rules.encoders import _encoders, bundle_dir

    for _, args in _encoders(model):
        given = args.get("model_path")
        if not isinstance(given, str):
            continue
        config = bundle_dir(project, given) / "config.json"
        if config.is_file() and config.resolve().is_relative_to(project.root.resolve()):
            return str(config.resolve().relative_to(project.root.resolve()))
    return None


def check_lightning_parse(project: ProjectDocs) -> list[Diagnostic]:
    """model.yaml parses and instantiates as an rslearn Lightning config."""
    doc = project.docs.get("model.yaml")
    if doc is None or not isinstance(doc.data, dict):
        return []
    if any(
        (d.file == doc.path and d.severity in ("error", "notice")) or d.rule == "encoder"
        for d in project.found
    ):
        return []  # its class paths, placeholders or encoder files are reported already
    cli, err = parse_model(doc.path, project.root)
    project.model_cli = cli
    if err is None:
        return []
    m = PARSER_KEY.search(err)
    key = tuple(m.group(1).split(".")) if m else ()
    bundle = _encoder_bundle(project, doc.data)
    if bundle is not None and "OlmoEarth" in err:
        err += f" (the OlmoEarth encoder is built from {bundle}: check it too)"
    return [
        doc.diag(
            err,
            key,
            hint="run 'rslearn model fit --config model.yaml --print_config'",
            rule="model",
        )
    ]


def check_checkpoint(project: ProjectDocs) -> list[Diagnostic]:
    """The checkpoint is a non-empty PyTorch file (its first bytes; nothing is loaded)."""
    ckpt = project.checkpoint
    if ckpt is None:
        return []
    if not ckpt.is_file():
        return [Diagnostic(ckpt, "checkpoint file does not exist", rule="checkpoint")]
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
    return []


def check_checkpoint_fits(project: ProjectDocs) -> list[Diagnostic]:
    """With ``deep``: the checkpoint's weights load into the model model.yaml builds."""
    from rslp.checkpoint import load_state_dict, mismatch

    ckpt = project.checkpoint
    cli = project.model_cli
    if not project.deep or ckpt is None or cli is None:
        return []  # no checkpoint, or model.yaml did not parse (already reported)
    if any(d.file == ckpt and d.severity == "error" for d in project.found):
        return []
    weights, err = load_state_dict(ckpt)
    if err is not None:
        return [Diagnostic(ckpt, err, rule="checkpoint")]
    problem = mismatch(cli.model.state_dict(), weights)  # type: ignore[attr-defined]
    if problem is None:
        return []
    mdoc = project.docs["model.yaml"]
    return [
        Diagnostic(
            ckpt,
            f"checkpoint does not fit {mdoc.path.name}: {problem}",
            hint="train with this model.yaml, or fix the architecture",
            rule="checkpoint",
        )
    ]
