"""The unified format: one ``olmoearth_config.yaml`` (the reference's newest projects).

:mod:`~rslp.formats.unified.schema` is the file's pydantic models,
:mod:`~rslp.formats.unified.transpile` what a run makes of it. This module reads a file
into problems (key path, message, hint) and writes the transpiled files a run uses into a
cache directory named by their content's digest (:func:`materialize`): every process of a
node reads the same files, and one that lacks them (another node of a cluster) writes them
again from the project, which gives the same bytes.

``data_sources.yaml`` beside the file (optional) replaces data sources: a mapping from a
layer name (``sentinel2_l2a_lookbehind_1``) or a modality key (``sentinel2_l2a``) to an
rslearn data source (``class_path``, ``init_args``, optionally ``query_config``...), e.g.
LocalFiles over imagery in the project, to run offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rslp.formats import UNIFIED_YAML, KeyPath
from rslp.formats.unified.schema import UnifiedConfig, head_problems

DATA_SOURCES_YAML = "data_sources.yaml"
# The files written for a run, by the role they play.
DATASET_FILE = "dataset.json"
MODEL_FILE = "model.yaml"
RUN_FILE = "olmoearth_run.yaml"
RESULTS_FILE = "inference_results_config.json"

DISCRIMINATORS = ("name", "field_type", "method")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a unified file: where, what, and what to do."""

    key: KeyPath
    message: str
    hint: str | None = None
    severity: str = "error"
    file: Path | None = None


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """Pydantic's error location without its union tags (keys not in the data)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, dict):
            # a missing key is named; a union tag (a class or tag name) is skipped
            tag = (
                not isinstance(part, str)
                or not part.isidentifier()
                or part[:1].isupper()
                or part in ("list", "mapping")
                or part in {str(node.get(k)) for k in DISCRIMINATORS}
            )
            if not tag:
                out.append(part)
                node = None
        elif not isinstance(node, list):
            break
    return tuple(out)


def _message(err: Any, key: KeyPath) -> tuple[str, str | None]:
    kind = err.get("type", "")
    name = key[-1] if key else ""
    if kind == "missing":
        if name == "config_version":
            return "config_version is missing", "add config_version: 0.13.0 at the top"
        return f"required key {name!r} is missing", None
    if kind == "extra_forbidden":
        return (
            f"unknown key {name!r}",
            "remove it, or check its spelling against docs/formats.md (the unified format)",
        )
    if kind in ("union_tag_invalid", "literal_error"):
        return f"{err['msg']}", None
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, "), None


def problems_of(data: Any) -> tuple[UnifiedConfig | None, list[Problem]]:
    """Validate parsed YAML; the config when it is valid, else every problem found."""
    if not isinstance(data, dict):
        return None, [Problem((), "expected a mapping at the top level")]
    try:
        cfg = UnifiedConfig.model_validate(data)
    except ValidationError as e:
        seen: set[tuple[KeyPath, str]] = set()
        out: list[Problem] = []
        for err in e.errors():
            key = _clean_loc(data, tuple(err["loc"]))
            msg, hint = _message(err, key)
            if (key, msg) not in seen:
                seen.add((key, msg))
                out.append(Problem(key, msg, hint))
        return None, out
    probs = [Problem(k, m) for k, m in head_problems(cfg)]
    if cfg.model is None:
        probs.append(
            Problem(("model",), "no model: a prediction needs model.encoder and model.tasks")
        )
    if cfg.prediction_requests is None:
        probs.append(
            Problem(
                ("prediction_requests",),
                "no prediction_requests: a prediction needs its partitioners",
                hint="add prediction_requests.partitioners (request_to_partitions, "
                "partition_to_windows)",
            )
        )
    for section in ("training", "labeled_data_prep"):
        if getattr(cfg, section) is not None:
            probs.append(
                Problem(
                    (section,),
                    f"{section} is not used by predictions (fine-tuning from a unified file "
                    "is not supported yet)",
                    severity="notice",
                )
            )
    return cfg, probs


def _read_yaml(path: Path, file: Path | None = None) -> tuple[Any, Problem | None]:
    """Parsed YAML, or the problem (a missing file, a syntax error at its line).

    ``file`` is the file the problem names (None: the unified file itself).
    """
    try:
        return yaml.safe_load(path.read_text()), None
    except FileNotFoundError:
        return None, Problem((), "file does not exist", file=file)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return None, Problem((), f"not valid YAML{where}", file=file)


def read_overrides(project_dir: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """``data_sources.yaml`` of a project (None when absent), and its problems."""
    path = project_dir / DATA_SOURCES_YAML
    if not path.is_file():
        return None, []
    data, problem = _read_yaml(path, path)
    if problem is not None:
        return None, [problem]
    if not isinstance(data, dict):
        return None, [
            Problem((), "expected a mapping: layer or modality -> data source", file=path)
        ]
    probs = []
    for k, v in data.items():
        if not isinstance(v, dict) or not isinstance(v.get("class_path"), str):
            probs.append(Problem((k,), "expected a data source with a class_path", file=path))
    return data, probs


def cache_root() -> Path:
    """Where transpiled files are kept: ``$ESRUNNER_NODE_DIR/transpiled`` (node-local)."""
    from rslp.bucket import node_base

    return node_base() / "transpiled"


@dataclass(frozen=True)
class Materialized:
    """The transpiled files of one unified file, on disk."""

    root: Path

    @property
    def dataset_json(self) -> Path:
        """The dataset config."""
        return self.root / DATASET_FILE

    @property
    def model_yaml(self) -> Path:
        """The model config."""
        return self.root / MODEL_FILE

    @property
    def run_yaml(self) -> Path:
        """The strategies and legend, as an ``olmoearth_run.yaml``."""
        return self.root / RUN_FILE


def render_files(cfg: UnifiedConfig, project_dir: Path, overrides: Any) -> dict[str, str]:
    """The transpiled files of ``cfg``: file name -> text (the legend last)."""
    from rslp.formats.unified.transpile import transpile

    t = transpile(cfg, project_dir, overrides)
    header = f"# Transpiled from {UNIFIED_YAML} by esrunner; do not edit.\n"
    return {
        DATASET_FILE: json.dumps(t.dataset, indent=2) + "\n",
        MODEL_FILE: header + yaml.safe_dump(t.model, sort_keys=False),
        RUN_FILE: header + yaml.safe_dump(t.run, sort_keys=False),
        RESULTS_FILE: json.dumps(t.results, indent=2) + "\n",
    }


def materialize(config: Path) -> tuple[Materialized | None, list[Problem]]:
    """The transpiled files of ``config`` (written once per content), or the problems.

    The files are named by their content's digest: a change anywhere they depend on (the
    file, ``data_sources.yaml``, an encoder bundle's weights, this code) gives new ones.

    Returns None with the problems when the file has an error (nothing is written).
    """
    from rslp.fsutil import fresh_dir, publish_dir

    config = config.resolve()
    data, problem = _read_yaml(config)
    if problem is not None:
        return None, [problem]
    cfg, probs = problems_of(data)
    overrides, more = read_overrides(config.parent)
    probs += more
    if cfg is None or any(p.severity == "error" for p in probs):
        return None, probs
    files = render_files(cfg, config.parent, overrides)
    digest = hashlib.sha256("".join(f"{n}\0{t}\0" for n, t in files.items()).encode())
    final = cache_root() / digest.hexdigest()[:16]
    if not (final / RESULTS_FILE).is_file():
        staging = fresh_dir(final.parent / f".{final.name}.{os.getpid()}")
        for name, text in files.items():
            (staging / name).write_text(text)
        try:
            publish_dir(staging, final)
        except OSError:
            if not (final / RESULTS_FILE).is_file():
                raise
    return Materialized(final), probs
