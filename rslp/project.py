"""Find and load a project's files into config models.

A project directory holds ``dataset.json``, ``model.yaml``, optionally ``checkpoint.ckpt``
and ``requirements.txt``, and its strategies in one of two formats (:mod:`rslp.formats`):
the seed's ``partition_strategies.yaml`` and ``postprocessing_strategies.yaml`` with
requests in ``prediction/`` (or the seed sample's ``prediction_requests/``), or the
reference runner's ``olmoearth_run.yaml`` with ``prediction_request_geometry.geojson``.
Both load into the same models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rslp import formats
from rslp.config import PartitionStrategiesConfig, PostprocessingStrategiesConfig
from rslp.errors import ProjectError

M = TypeVar("M", bound=BaseModel)
REQUEST_DIRS = ("prediction", "prediction_requests")


@dataclass(frozen=True)
class ProjectFiles:
    """The absolute paths of one project's files.

    Attributes:
        model_yaml: rslearn/Lightning model config.
        dataset_json: rslearn dataset config.
        partition_strategies_yaml: partitioning strategies.
        postprocessing_strategies_yaml: postprocessing strategies.
        request_geojson: the prediction request.
        checkpoint: model weights, or None.
        format: ``seed``, ``reference`` or ``unified``; in the reference format both
            strategy paths are the project's ``olmoearth_run.yaml`` (each role is a section
            of it); in the unified format every path but the request and checkpoint is a
            transpiled file (:func:`rslp.formats.unified.materialize`) of ``source``.
        source: the unified format's ``olmoearth_config.yaml``, else None.
    """

    model_yaml: Path
    dataset_json: Path
    partition_strategies_yaml: Path
    postprocessing_strategies_yaml: Path
    request_geojson: Path
    checkpoint: Path | None = None
    format: str = formats.SEED
    source: Path | None = None

    def __post_init__(self) -> None:
        """Strategy files named ``olmoearth_run.yaml`` mean the reference format.

        Raises:
            ProjectError: when only one of them is (the formats cannot be mixed).
        """
        ref = [
            formats.is_run_config(p)
            for p in (self.partition_strategies_yaml, self.postprocessing_strategies_yaml)
        ]
        if ref[0] != ref[1]:
            odd = self.postprocessing_strategies_yaml if ref[0] else self.partition_strategies_yaml
            raise ProjectError(
                odd,
                f"is a seed-format file, the other strategies come from {formats.RUN_YAML}",
                hint="give both strategy files in one format (esrunner convert moves a project)",
            )
        fmt = formats.REFERENCE if ref[0] else formats.SEED
        object.__setattr__(self, "format", formats.UNIFIED if self.source else fmt)

    def key(self, role: str, key: str) -> str:
        """A seed key path of ``role`` (e.g. ``strategy_small.init_args``) as in the file."""
        return key if self.format == formats.SEED else formats.real_key_str(role, key)

    @property
    def sectioned(self) -> bool:
        """Whether the strategies are sections of one ``olmoearth_run.yaml``."""
        return self.format in (formats.REFERENCE, formats.UNIFIED)

    @property
    def project_dir(self) -> Path:
        """The directory relative paths in dataset.json are resolved against."""
        return self.source.parent if self.source is not None else self.dataset_json.parent

    @property
    def variant(self) -> str:
        """The model variant these files are (:mod:`rslp.variants`); ``""`` for the default."""
        from rslp.variants import variant_name

        run = self.partition_strategies_yaml if self.format == formats.REFERENCE else None
        return variant_name(self.source or run or self.model_yaml) or ""

    def transpiled(self) -> ProjectFiles:
        """These files, with a unified project's transpiled files in this node's cache.

        A process of another node (a cluster worker, with a node directory of its own) has
        not got the driver's cache: the files are transpiled again from ``source`` (its
        copy of the project) into its own (same inputs, same content).
        """
        from rslp.formats.unified import cache_root, materialize

        if self.source is None:
            return self
        if self.model_yaml.is_file() and self.model_yaml.is_relative_to(cache_root()):
            return self  # this node's own copy

        mat, probs = materialize(self.source)
        if mat is None:
            raise unified_error(self.source, probs)
        return _from_transpiled(mat, self.request_geojson, self.checkpoint, self.source)

    @staticmethod
    def from_dir(
        project_dir: Path,
        request: Path | None = None,
        run_config: Path | str | None = None,
        model_config: Path | str | None = None,
    ) -> ProjectFiles:
        """Locate the files of a project directory.

        Args:
            project_dir: the project directory, in either format.
            request: a request file; default (reference format)
                ``prediction_request_geometry.geojson``, else the first ``*.geojson`` by
                name in ``prediction/`` or ``prediction_requests/``.
            run_config: the run config of the variant to use (``--run-config``).
            model_config: the model config of the variant to use (``--model-config``).

        Raises:
            ProjectError: naming the missing file, or the variants to choose from.
        """
        from rslp.variants import choose, missing_model

        d = project_dir.resolve()
        if not d.is_dir():
            raise ProjectError(d, "project directory does not exist")
        try:
            fmt = formats.detect_format(d)
        except formats.FormatError as e:
            raise ProjectError(e.path, str(e), hint=e.hint) from None
        if fmt is None:
            raise ProjectError(
                d / "partition_strategies.yaml",
                "required project file is missing",
                hint=f"a project has partition_strategies.yaml and postprocessing_strategies.yaml"
                f" (seed format) or {formats.RUN_YAML} (reference format)",
            )
        variant = choose(d, run_config, model_config)
        if fmt == formats.UNIFIED:
            return _unified_files(d, variant.model_config, request)
        no_model = missing_model(variant)
        if no_model is not None:
            raise no_model
        names = [variant.model_config, d / "dataset.json"]
        if fmt == formats.SEED:
            names += [d / formats.PARTITION_ROLE, d / formats.POSTPROCESSING_ROLE]
        for path in names:
            if not path.is_file():
                raise ProjectError(path, "required project file is missing")
        request = request or required_request(d)
        ckpt = variant.checkpoint(d)
        run_yaml = variant.run_config or d / formats.RUN_YAML
        return ProjectFiles(
            model_yaml=variant.model_config,
            dataset_json=d / "dataset.json",
            partition_strategies_yaml=run_yaml
            if fmt == formats.REFERENCE
            else d / formats.PARTITION_ROLE,
            postprocessing_strategies_yaml=(
                run_yaml if fmt == formats.REFERENCE else d / formats.POSTPROCESSING_ROLE
            ),
            request_geojson=request.resolve(),
            checkpoint=ckpt if ckpt.exists() else None,
            format=fmt,
        )


def unified_error(source: Path, problems: list[Any]) -> ProjectError:
    """The first error of a unified file as a :class:`ProjectError` (with the count)."""
    errors = [p for p in problems if p.severity == "error"]
    first = errors[0]
    key = ".".join(str(k) for k in first.key) or None
    more = f" ({len(errors)} errors; esbuild validate lists them)" if len(errors) > 1 else ""
    return ProjectError(first.file or source, first.message + more, key, hint=first.hint)


def _from_transpiled(
    mat: Any, request: Path, checkpoint: Path | None, source: Path
) -> ProjectFiles:
    """A unified file's :class:`ProjectFiles`: its transpiled files (``Materialized``)."""
    return ProjectFiles(
        model_yaml=mat.model_yaml,
        dataset_json=mat.dataset_json,
        partition_strategies_yaml=mat.run_yaml,
        postprocessing_strategies_yaml=mat.run_yaml,
        request_geojson=request,
        checkpoint=checkpoint,
        source=source,
    )


def _unified_files(d: Path, source: Path, request: Path | None) -> ProjectFiles:
    """A unified project's files: its transpiled files, request and checkpoint."""
    from rslp.formats.unified import materialize
    from rslp.variants import Variant, variant_name

    mat, probs = materialize(source)
    if mat is None:
        raise unified_error(source, probs)
    request = request or required_request(d)
    ckpt = Variant(variant_name(source) or "", source).checkpoint(d)
    return _from_transpiled(mat, request.resolve(), ckpt if ckpt.exists() else None, source)


def required_request(project_dir: Path) -> Path:
    """The request a run uses when none is given; an error naming where it looked."""
    found = default_request(project_dir)
    if found is None:
        raise ProjectError(
            project_dir / "prediction",
            f"no request: no {formats.REFERENCE_REQUEST} and no *.geojson in "
            "prediction/ or prediction_requests/",
            hint="give the request with the run: --request FILE",
        )
    return found


def request_files(project_dir: Path) -> list[Path]:
    """Every request in a project, the reference's default first.

    ``prediction_request_geometry.geojson``, then ``prediction/`` and
    ``prediction_requests/`` by name.
    """
    top = project_dir / formats.REFERENCE_REQUEST
    found = sorted(p for sub in REQUEST_DIRS for p in (project_dir / sub).glob("*.geojson"))
    return ([top] if top.is_file() else []) + found


def default_request(project_dir: Path) -> Path | None:
    """The request a run uses when none is given (the first of :func:`request_files`)."""
    found = request_files(project_dir)
    return found[0] if found else None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, naming the file and line on a syntax error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ProjectError(path, "file does not exist") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ProjectError(path, f"not valid YAML{where}: {e}") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file, naming the file and line on a syntax error."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(path, "file does not exist") from None
    except json.JSONDecodeError as e:
        raise ProjectError(path, f"not valid JSON at line {e.lineno}: {e.msg}") from None


def load_model(path: Path, model: type[M], role: str | None = None) -> M:
    """Load a YAML file into a pydantic model, naming the key path of the first error.

    Args:
        path: the file.
        model: the model.
        role: with an ``olmoearth_run.yaml``, the seed role whose section to load.
    """
    data = read_yaml(path)
    if role is not None:
        data = formats.section(data, role)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        if role is not None:
            loc = formats.real_key(role, loc)
        key = ".".join(str(p) for p in loc)
        raise ProjectError(path, f"{err['msg']} ({len(e.errors())} error(s))", key) from None


def load_dataset_config(path: Path) -> dict[str, Any]:
    """``dataset.json`` as parsed JSON, with a ``layers`` mapping (rslearn checks the rest)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
        raise ProjectError(path, "expected an object with 'layers'", "layers")
    return data


def load_model_config(path: Path) -> dict[str, Any]:
    """``model.yaml`` as parsed YAML (a mapping)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ProjectError(path, "expected a mapping at the top level")
    return data


def default_checkpoint(model_yaml: Path, given: str | Path | None) -> Path | None:
    """The checkpoint a runner uses: ``given``, else ``checkpoint.ckpt`` beside model.yaml."""
    if given is not None:
        return Path(given).resolve()
    default = model_yaml.parent / "checkpoint.ckpt"
    return default if default.exists() else None


def _role(files: ProjectFiles, role: str) -> str | None:
    return role if files.sectioned else None


def load_partition_strategies(files: ProjectFiles) -> PartitionStrategiesConfig:
    """Load the partition strategies (``partition_strategies.yaml`` or its section)."""
    return load_model(
        files.partition_strategies_yaml,
        PartitionStrategiesConfig,
        _role(files, formats.PARTITION_ROLE),
    )


def load_postprocessing_strategies(files: ProjectFiles) -> PostprocessingStrategiesConfig:
    """Load the postprocessing strategies (``postprocessing_strategies.yaml`` or its section)."""
    return load_model(
        files.postprocessing_strategies_yaml,
        PostprocessingStrategiesConfig,
        _role(files, formats.POSTPROCESSING_ROLE),
    )
