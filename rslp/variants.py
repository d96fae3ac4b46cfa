"""Model variants: several run configs and model configs in one project directory.

A reference-format project may hold more than one model, each a *variant*: a run config
``olmoearth_run_<name>.yaml`` with its model config ``model_<name>.yaml`` (or the shared
``model.yaml`` when there is no ``model_<name>.yaml``), next to one ``dataset.json``. The
default variant is ``olmoearth_run.yaml`` with ``model.yaml``; its name is ``""``. A
seed-format project may likewise hold ``model_<name>.yaml`` files.

Every front door (validate, plan, run, lock, build, finetune) chooses one with
``--run-config`` and ``--model-config`` (:func:`choose`); a directory with several variants
and no default names them and the flag. ``esbuild validate`` without a choice checks every
variant (:func:`list_variants`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rslp import formats
from rslp.errors import ProjectError

MODEL_YAML = "model.yaml"
_MODEL = re.compile(r"^model(?:_(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]*))?\.yaml$")


@dataclass(frozen=True)
class Variant:
    """One model of a project directory.

    Attributes:
        name: ``""`` for the default (``olmoearth_run.yaml`` / ``model.yaml``), else the
            suffix of the run config (``maize`` for ``olmoearth_run_maize.yaml``) or, in
            the seed format, of the model config.
        model_config: the model config file.
        run_config: the run config file (reference format), else None.
    """

    name: str
    model_config: Path
    run_config: Path | None = None

    def options(self) -> list[str]:
        """The command-line options that choose this variant (file names in the dir)."""
        out = ["--run-config", self.run_config.name] if self.run_config is not None else []
        return [*out, "--model-config", self.model_config.name]

    def checkpoint(self, project_dir: Path) -> Path:
        """``checkpoint_<name>.ckpt`` when the directory has one, else ``checkpoint.ckpt``."""
        own = project_dir / f"checkpoint_{self.name}.ckpt"
        return own if self.name and own.is_file() else project_dir / "checkpoint.ckpt"

    def describe(self) -> str:
        """``olmoearth_run_maize.yaml + model_maize.yaml`` (for messages)."""
        files = [p.name for p in (self.run_config, self.model_config) if p is not None]
        return " + ".join(files)


def variant_name(path: Path) -> str | None:
    """The variant a run config or model config file names; None when it names none."""
    m = (
        formats.RUN_CONFIG.match(path.name)
        or formats.UNIFIED_CONFIG.match(path.name)
        or _MODEL.match(path.name)
    )
    return None if m is None else m.group("variant") or ""


def model_configs(project_dir: Path) -> list[Path]:
    """The model configs in a directory, by name: ``model.yaml``, ``model_*.yaml``."""
    return sorted(p for p in project_dir.glob("model*.yaml") if _MODEL.match(p.name))


def _model_for(project_dir: Path, name: str) -> Path:
    own = project_dir / f"model_{name}.yaml"
    return own if name and own.is_file() else project_dir / MODEL_YAML


def list_variants(project_dir: Path) -> list[Variant]:
    """Every variant of a directory, the default first (empty when it has no model).

    Reference format: one per run config. Unified format: one per
    ``olmoearth_config*.yaml`` (it is both the run config and the model config). Seed
    format: one per model config.
    """
    unified = formats.unified_configs(project_dir)
    if unified:
        return [Variant(n, u, u) for u in unified if (n := variant_name(u)) is not None]
    runs = formats.run_configs(project_dir)
    if runs:
        return [
            Variant(n, _model_for(project_dir, n), run)
            for run in runs
            if (n := variant_name(run)) is not None
        ]
    return [Variant(n, m) for m in model_configs(project_dir) if (n := variant_name(m)) is not None]


def _resolve(project_dir: Path, given: Path | str, flag: str) -> Path:
    p = Path(given)
    for cand in (project_dir / p, p):
        if cand.is_file():
            return cand.resolve()
    raise ProjectError(
        project_dir / p,
        f"the file given by {flag} does not exist",
        hint=f"name a file in {project_dir} or a path to one",
    )


def choose(
    project_dir: Path, run_config: Path | str | None = None, model_config: Path | str | None = None
) -> Variant:
    """The variant a run uses.

    Args:
        project_dir: the project directory.
        run_config: ``--run-config``: a file name in the directory or a path; its model
            config, unless given, is ``model_<name>.yaml`` when present, else ``model.yaml``.
        model_config: ``--model-config``: a file name in the directory or a path.

    Raises:
        ProjectError: a file given does not exist, a run config is not named
            ``olmoearth_run*.yaml``, or the directory has several variants, no default and
            no choice (the message names them and the flags).
    """
    d = project_dir.resolve()
    model = _resolve(d, model_config, "--model-config") if model_config is not None else None
    if run_config is not None:
        run = _resolve(d, run_config, "--run-config")
        if formats.is_unified_config(run):
            if model is not None and model != run:
                raise ProjectError(
                    model,
                    f"--model-config does not apply: {run.name} holds the model",
                    hint="leave --model-config out",
                )
            return Variant(variant_name(run) or "", run, run)
        if not formats.is_run_config(run):
            raise ProjectError(
                run,
                "is not a run config name",
                hint="a run config is named olmoearth_run.yaml or olmoearth_run_<variant>.yaml "
                "(olmoearth_config.yaml or olmoearth_config_<variant>.yaml in the unified format)",
            )
        name = variant_name(run) or ""
        return Variant(name, model or _model_for(run.parent, name), run)
    found = list_variants(d)
    runs = [v for v in found if v.run_config is not None]
    if model is not None and any(formats.is_unified_config(v.model_config) for v in found):
        raise ProjectError(
            model,
            "--model-config does not apply to a unified project: its olmoearth_config.yaml "
            "holds the model",
            hint="choose a variant with --run-config olmoearth_config_<variant>.yaml",
        )
    if model is not None:
        default = next((v for v in runs if not v.name), None)
        if runs and default is None and len(runs) > 1:
            raise _ambiguous(d, runs)
        paired = default or (runs[0] if runs else None)
        if paired is not None:
            return Variant(paired.name, model, paired.run_config)
        return Variant(variant_name(model) or "", model)
    default = next((v for v in found if not v.name), None)
    if default is not None:
        return default
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise _ambiguous(d, found)
    return Variant("", d / MODEL_YAML)  # nothing here: the missing model.yaml is named later


def missing_model(variant: Variant) -> ProjectError | None:
    """The error for a run config whose model config is not there (None: it is there).

    Names the variant's run config, the variant and each file looked for, so a directory
    of several variants says which one lacks its model.
    """
    if variant.model_config.is_file() or variant.run_config is None:
        return None
    d = variant.run_config.parent
    looked = [f"model_{variant.name}.yaml", MODEL_YAML] if variant.name else [MODEL_YAML]
    if variant.model_config.name not in looked:  # given with --model-config
        looked = [str(variant.model_config)]
    which = f"variant {variant.name!r}" if variant.name else "the default variant"
    return ProjectError(
        variant.run_config,
        f"{which} has no model config: no {' and no '.join(looked)} in {d}",
        hint=f"add {looked[0]} beside it, or give one with --model-config FILE",
    )


def _ambiguous(d: Path, found: list[Variant]) -> ProjectError:
    flag = "--run-config" if found[0].run_config is not None else "--model-config"
    first = found[0].run_config or found[0].model_config
    names = ", ".join(v.describe() for v in found)
    return ProjectError(
        d,
        f"holds {len(found)} model variants and no default: {names}",
        hint=f"choose one, e.g. {flag} {first.name}",
    )
