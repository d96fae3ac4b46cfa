"""The three project formats, and how the reference format's file maps onto the seed's roles.

A project is written in one of three formats; all load into the same config models
(:mod:`rslp.config`), so every step, check and build sees one project model:

- **seed** (the seed's esrunner): ``partition_strategies.yaml``,
  ``postprocessing_strategies.yaml`` and requests in ``prediction/`` (or
  ``prediction_requests/``).
- **reference** (the olmoearth-runner package): one ``olmoearth_run.yaml`` and the request
  ``prediction_request_geometry.geojson``.
- **unified** (the reference's newest projects): one ``olmoearth_config.yaml`` that
  :mod:`rslp.formats.unified` transpiles into the reference format's three files
  (``dataset.json``, ``model.yaml``, ``olmoearth_run.yaml``); the run reads those.

In the reference format, ``olmoearth_run.yaml`` plays both strategy roles: each role is a
*section* of it, whose keys are the seed's keys mapped onto the reference's key paths
(:data:`REFERENCE_KEYS`). Messages always name the key path in the file as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SEED = "seed"
REFERENCE = "reference"
UNIFIED = "unified"
FORMATS = (SEED, REFERENCE, UNIFIED)
UNIFIED_YAML = "olmoearth_config.yaml"

RUN_YAML = "olmoearth_run.yaml"
REFERENCE_REQUEST = "prediction_request_geometry.geojson"
PARTITION_ROLE = "partition_strategies.yaml"
POSTPROCESSING_ROLE = "postprocessing_strategies.yaml"
FINETUNE_ROLE = "finetune_strategies.yaml"

KeyPath = tuple[str | int, ...]

# role -> seed key -> key path in olmoearth_run.yaml
REFERENCE_KEYS: dict[str, dict[str, KeyPath]] = {
    PARTITION_ROLE: {
        "strategy_large": ("partition_strategies", "partition_request_geometry"),
        "strategy_small": ("partition_strategies", "prepare_window_geometries"),
        "dataset_build": ("dataset_build",),
    },
    POSTPROCESSING_ROLE: {
        "strategy_small": ("postprocessing_strategies", "process_window"),
        "strategy_medium": ("postprocessing_strategies", "process_partition"),
        "strategy_large": ("postprocessing_strategies", "process_dataset"),
        "inference_results_config": ("inference_results_config",),
    },
}
# role -> the key path in olmoearth_run.yaml whose whole content is that role's file
REFERENCE_ROOTS: dict[str, KeyPath] = {FINETUNE_ROLE: ("window_prep",)}


# ``olmoearth_run.yaml`` or ``olmoearth_run_<variant>.yaml`` (:mod:`rslp.variants`).
RUN_CONFIG = re.compile(r"^olmoearth_run(?:_(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]*))?\.yaml$")


def is_run_config(path: Path) -> bool:
    """Whether a file is a run config (:data:`RUN_CONFIG`): it plays both strategy roles."""
    return RUN_CONFIG.match(path.name) is not None


def run_configs(project_dir: Path) -> list[Path]:
    """The run configs in a directory, by name."""
    return sorted(p for p in project_dir.glob("olmoearth_run*.yaml") if is_run_config(p))


# ``olmoearth_config.yaml`` or ``olmoearth_config_<variant>.yaml``: a unified project file.
UNIFIED_CONFIG = re.compile(
    r"^olmoearth_config(?:_(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]*))?\.yaml$"
)


def is_unified_config(path: Path) -> bool:
    """Whether a file is a unified project file (:data:`UNIFIED_CONFIG`)."""
    return UNIFIED_CONFIG.match(path.name) is not None


def unified_configs(project_dir: Path) -> list[Path]:
    """The unified project files in a directory, by name."""
    return sorted(p for p in project_dir.glob("olmoearth_config*.yaml") if is_unified_config(p))


def project_dirs(data_dir: Path) -> list[Path]:
    """The project directories under ``data_dir`` (e.g. ``data/``), by name.

    A project has a model: a model config (``model.yaml``, ``model_<v>.yaml``) or a
    unified file (``olmoearth_config.yaml``, ``olmoearth_config_<v>.yaml``).
    """
    found = {p.parent for p in data_dir.glob("*/model*.yaml")}
    found |= {p.parent for p in data_dir.glob("*/olmoearth_config*.yaml") if is_unified_config(p)}
    return sorted(found)


class FormatError(ValueError):
    """A directory whose format cannot be told; ``path`` is the file to look at."""

    def __init__(self, path: Path, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


# A run config spelled another way: olmoearth_run.yml, olmoearth_run_maize.json, ...YAML
_MISSPELLED = re.compile(r"^olmoearth_run(?:_[A-Za-z0-9][A-Za-z0-9_.-]*)?\.(?:yml|json|YAML|YML)$")


_MISSPELLED_UNIFIED = re.compile(
    r"^olmoearth_config(?:_[A-Za-z0-9][A-Za-z0-9_.-]*)?\.(?:yml|json|YAML|YML)$"
)


def detect_format(project_dir: Path) -> str | None:
    """``reference`` when the directory has a run config and no seed strategy files.

    Returns ``unified`` when it has an ``olmoearth_config.yaml`` (and nothing of the other
    formats), ``seed`` when it has either seed strategy file, None when it has no format's
    files. Raises :class:`FormatError` when it has two formats' files (which one is meant
    is unclear), or when its only run config is spelled otherwise (``olmoearth_run.yml``:
    the reference runner reads ``.yaml`` alone, so this runner does too, and says so).
    """
    seed = [n for n in (PARTITION_ROLE, POSTPROCESSING_ROLE) if (project_dir / n).is_file()]
    runs = [p.name for p in run_configs(project_dir)]
    unified = [p.name for p in unified_configs(project_dir)]
    if unified and (seed or runs):
        other = ", ".join(seed or runs)
        raise FormatError(
            project_dir / unified[0],
            f"{', '.join(unified)} (unified format) and {other} are both here; keep one format",
            hint="esrunner convert DIR --to reference writes the unified file's files elsewhere",
        )
    if unified:
        return UNIFIED
    ref = bool(runs)
    if seed and ref:
        raise FormatError(
            project_dir / RUN_YAML,
            f"both {', '.join(runs)} (reference format) and {', '.join(seed)} (seed format) "
            "are here; keep one format (esrunner convert moves a project across)",
        )
    if ref:
        return REFERENCE
    if not seed:
        odd = sorted(
            p
            for p in project_dir.glob("olmoearth_*")
            if _MISSPELLED.match(p.name) or _MISSPELLED_UNIFIED.match(p.name)
        )
        if odd:
            meant = odd[0].name.rsplit(".", 1)[0] + ".yaml"
            raise FormatError(
                odd[0],
                f"is not read: run configs end in .yaml (did you mean {meant}?)",
                hint=f"rename it: mv {odd[0].name} {meant}"
                + (
                    " (a .json run config must be rewritten as YAML)"
                    if odd[0].suffix == ".json"
                    else ""
                ),
            )
    return SEED if seed else None


def _get(node: Any, path: KeyPath) -> tuple[bool, Any]:
    for k in path:
        if isinstance(node, dict) and k in node:
            node = node[k]
        else:
            return False, None
    return True, node


def section(data: Any, role: str) -> dict[str, Any]:
    """The seed-format content of ``role`` inside a parsed ``olmoearth_run.yaml``.

    Keys missing from the file are missing from the section (the seed model then names
    them; :func:`real_key` says where they belong).
    """
    if role in REFERENCE_ROOTS:
        found, value = _get(data, REFERENCE_ROOTS[role])
        return value if found and isinstance(value, dict) else {}
    out: dict[str, Any] = {}
    for key, path in REFERENCE_KEYS[role].items():
        found, value = _get(data, path)
        if found:
            out[key] = value
    return out


def has_section(data: Any, role: str) -> bool:
    """Whether a parsed ``olmoearth_run.yaml`` has anything for ``role``."""
    if role in REFERENCE_ROOTS:
        return _get(data, REFERENCE_ROOTS[role])[0]
    return any(_get(data, path)[0] for path in REFERENCE_KEYS[role].values())


def real_key(role: str, key: KeyPath) -> KeyPath:
    """A key path of a section (seed keys) as the key path in ``olmoearth_run.yaml``."""
    if role in REFERENCE_ROOTS:
        return (*REFERENCE_ROOTS[role], *key)
    if key and isinstance(key[0], str) and key[0] in REFERENCE_KEYS[role]:
        return (*REFERENCE_KEYS[role][key[0]], *key[1:])
    return key


def real_key_str(role: str, key: str) -> str:
    """:func:`real_key` for a dotted key string (``strategy_small.init_args.grid_size``)."""
    if role in REFERENCE_ROOTS:
        root = ".".join(str(k) for k in REFERENCE_ROOTS[role])
        return f"{root}.{key}" if key else root
    head, dot, rest = key.partition(".")
    mapped = REFERENCE_KEYS[role].get(head)
    if mapped is None:
        return key
    return ".".join(str(k) for k in mapped) + (dot + rest if rest else "")


def lines_of_section(lines: dict[KeyPath, int], role: str) -> dict[KeyPath, int]:
    """Key line numbers of ``olmoearth_run.yaml`` re-keyed to a section's seed keys."""
    out: dict[KeyPath, int] = {}
    if role in REFERENCE_ROOTS:
        root = REFERENCE_ROOTS[role]
        out = {k[len(root) :]: line for k, line in lines.items() if k[: len(root)] == root}
        if () in lines and () not in out:
            out[()] = lines[()]
        return out
    for key, path in REFERENCE_KEYS[role].items():
        n = len(path)
        for k, line in lines.items():
            if k[:n] == path:
                out[(key, *k[n:])] = line
    if () in lines:
        out[()] = lines[()]
    return out
