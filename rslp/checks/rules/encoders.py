"""Rules on pretrained encoders whose files come from outside the project.

An OlmoEarth encoder (``rslearn.models.olmoearth_pretrain.model.OlmoEarth``) is built from
``model_id`` (downloaded from the Hugging Face hub when the model is built) or from
``model_path``: a local bundle with ``config.json`` (the pretraining config, with a
``model`` section) and ``weights.pth`` (not needed with ``random_initialization: true``,
as when the project's checkpoint holds every weight). Projects usually point
``model_path`` at ``${EXTRA_FILES_PATH}``: the project's ``extra_model_files/``, or what
the environment sets (:mod:`rslp.templates`).

Checks never download: a hub model is a notice (the model is built, and checked, by the
run), and a local bundle is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import KeyPath
from rslp.checks.project import ProjectDocs
from rslp.plugins import class_nodes

OLMOEARTH = "rslearn.models.olmoearth_pretrain.model.OlmoEarth"


def _encoders(node: Any) -> Iterator[tuple[KeyPath, dict[str, Any]]]:
    """Every ``{class_path: OlmoEarth, init_args: ...}`` in a parsed model.yaml: its init_args."""
    for key, found in class_nodes(node):
        if found["class_path"] == OLMOEARTH:
            args = found.get("init_args")
            yield key, args if isinstance(args, dict) else {}


def _bundle_problem(path: Path, random_init: bool) -> str | None:
    """What is wrong with an OlmoEarth bundle directory, or None."""
    config = path / "config.json"
    if not config.is_file():
        return f"{path} has no config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        return f"{config} does not parse as JSON ({e})"
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        return f"{config} is not an OlmoEarth config (it has no 'model' section)"
    if not random_init and not (path / "weights.pth").is_file():
        return f"{path} has no weights.pth (and random_initialization is not true)"
    return None


def _broken_json(config: Path, root: Path) -> Diagnostic | None:
    """Where ``config`` stops being JSON (line, column), when it is a file of the project.

    A bundle outside the project may be replaced where the model runs (a warning then).
    """
    try:
        inside = config.resolve().is_relative_to(root.resolve())
        text = config.read_text() if inside and config.is_file() else None
    except (OSError, UnicodeDecodeError) as e:
        return Diagnostic(config, f"cannot be read: {e}", rule="encoder")
    if text is None:
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return Diagnostic(
            config,
            f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}; the run "
            "builds the OlmoEarth encoder from it",
            line=e.lineno,
            hint="fix the JSON (a trailing comma or a missing quote is the usual cause)",
            rule="encoder",
        )
    return None


def bundle_dir(project: ProjectDocs, given: str) -> Path:
    """The directory an encoder's ``model_path`` names, as a run of the project reads it."""
    from rslp.templates import expand, template_values

    path = Path(expand(given, template_values(project.root, project.root, project.root)))
    return path if path.is_absolute() else project.root / path


def check_encoder_sources(project: ProjectDocs) -> list[Diagnostic]:
    """OlmoEarth encoders: a hub ``model_id`` is a notice; a ``model_path`` bundle must be whole.

    A broken bundle is a warning, not an error: ``EXTRA_FILES_PATH`` may be set where the
    model runs. A ``config.json`` of the project itself that is not JSON is an error, at
    its line and column.
    """
    doc = project.docs.get("model.yaml")
    if doc is None or not isinstance(doc.data, dict):
        return []
    out = []
    for key, args in _encoders(doc.data):
        if args.get("model_id") is not None:
            out.append(
                doc.diag(
                    f"not checked here: OlmoEarth {args['model_id']} comes from the Hugging "
                    "Face hub when the model is built, and checks never download; the model "
                    "parse is left to the run",
                    (*key, "init_args", "model_id"),
                    hint="or give model_path: a local bundle (config.json, weights.pth), "
                    "e.g. ${EXTRA_FILES_PATH} = extra_model_files/",
                    rule="encoder",
                    severity="notice",
                )
            )
            continue
        given = args.get("model_path")
        if not isinstance(given, str):
            continue
        path = bundle_dir(project, given)
        broken = _broken_json(path / "config.json", project.root)
        if broken is not None:  # the project's own file: the run would fail on it
            out.append(broken)
            continue
        problem = _bundle_problem(path, args.get("random_initialization") is True)
        if problem is not None:
            shown = f"{given} = {path}" if given != str(path) else given
            out.append(
                doc.diag(
                    f"the OlmoEarth bundle {shown} cannot build the encoder: {problem}",
                    (*key, "init_args", "model_path"),
                    hint="put the encoder's config.json (and weights.pth, or set "
                    "random_initialization: true when the checkpoint holds the weights) in "
                    "extra_model_files/, or set EXTRA_FILES_PATH where the model runs",
                    rule="encoder",
                    severity="warning",
                )
            )
    return out
