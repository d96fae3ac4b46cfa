"""Load strategy classes by ``class_path`` and bind their ``init_args``.

Class paths written for the seed's runner (``esrun.tools.partitioners.*`` and
``esrun.tools.postprocessors.*``) and for the reference runner
(``olmoearth_run.runner.tools.*``) resolve to this package's implementations, so projects
written for either keep working. Any other class path is imported from the PYTHONPATH.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from rslp.errors import ProjectError

T = TypeVar("T")

# The seed's (esrun.tools.*) and the reference runner's (olmoearth_run.runner.tools.*)
# class paths -> ours: module under the tools package and class name -> our class.
_P = "rslp.common.partitioners."
_Q = "rslp.common.postprocessing."
_F = "rslp.finetune."
_TOOLS: dict[str, str] = {
    "partitioners.noop_partitioner.NoopPartitioner": _P + "noop.NoopPartitioner",
    "partitioners.fixed_window_partitioner.FixedWindowPartitioner": (
        _P + "fixed_window.FixedWindowPartitioner"
    ),
    "partitioners.grid_partitioner.GridPartitioner": _P + "grid.GridPartitioner",
    "partitioners.reprojection_partitioner.ReprojectionPartitioner": (
        _P + "reprojection.ReprojectionPartitioner"
    ),
    "partitioners.chunk_partitioner.ChunkPartitioner": _P + "chunk.ChunkPartitioner",
    "partitioners.partition_interface.PartitionInterface": _P + "interface.PartitionInterface",
    "postprocessors.noop_raster.NoopRaster": _Q + "raster.NoopRaster",
    "postprocessors.combine_geotiff.CombineGeotiff": _Q + "raster.CombineGeotiff",
    "postprocessors.combine_geojson.CombineGeojson": _Q + "vector.CombineGeojson",
    "postprocessors.noop_vector.NoopVector": _Q + "vector.NoopVector",
    "postprocessors.combine_and_deduplicate_geojson.CombineAndDeduplicateGeojson": (
        _Q + "vector.CombineAndDeduplicateGeojson"
    ),
    "postprocessors.simplify_polygons.SimplifyPolygons": _Q + "vector.SimplifyPolygons",
    "postprocessors.postprocess_inferface.PostprocessInterface": (
        _Q + "interface.PostprocessInterface"
    ),
    "postprocessors.postprocess_interface.PostprocessInterface": (
        _Q + "interface.PostprocessInterface"
    ),
    "postprocessors.postprocess_interface.PostprocessInterfaceRaster": (
        _Q + "interface.PostprocessInterface"
    ),
    "postprocessors.postprocess_interface.PostprocessInterfaceVector": (
        _Q + "interface.PostprocessInterface"
    ),
    "samplers.noop_sampler.NoopSampler": _F + "samplers.NoopSampler",
    "samplers.choose_n_sampler.ChooseNSampler": _F + "samplers.ChooseNSampler",
    "samplers.sampler_interface.SamplerInterface": _F + "samplers.SamplerInterface",
    "labeled_window_preparers.point_to_raster_window_preparer.PointToRasterWindowPreparer": (
        _F + "preparers.PointToRasterWindowPreparer"
    ),
    "labeled_window_preparers.polygon_to_raster_window_preparer.PolygonToRasterWindowPreparer": (
        _F + "preparers.PolygonToRasterWindowPreparer"
    ),
    "labeled_window_preparers.point_to_pixel_window_preparer.PointToPixelWindowPreparer": (
        _F + "preparers.PointToPixelWindowPreparer"
    ),
    "labeled_window_preparers.labeled_window_preparer.LabeledWindowPreparer": (
        _F + "preparers.LabeledWindowPreparer"
    ),
    "data_splitters.spatial_data_splitter.SpatialDataSplitter": _F
    + "splitters.SpatialDataSplitter",
    "data_splitters.random_data_splitter.RandomDataSplitter": _F + "splitters.RandomDataSplitter",
    "data_splitters.data_splitter_interface.DataSplitterInterface": (
        _F + "splitters.DataSplitterInterface"
    ),
}
SEED_PREFIX = "esrun.tools."
REFERENCE_PREFIX = "olmoearth_run.runner.tools."
# Where the reference runner's default differs from ours and its projects rely on it: its
# CombineGeojson puts the request's geometry on each result and merges without removing
# duplicates.
_REFERENCE_ONLY = {
    "postprocessors.combine_geojson.CombineGeojson": _Q + "vector.RequestCombineGeojson",
}
SEED_ALIASES: dict[str, str] = {SEED_PREFIX + k: v for k, v in _TOOLS.items()} | {
    REFERENCE_PREFIX + k: v for k, v in (_TOOLS | _REFERENCE_ONLY).items()
}


def is_foreign(class_path: str) -> bool:
    """Whether a class path is written for the seed's or the reference's runner."""
    return class_path.startswith((SEED_PREFIX, REFERENCE_PREFIX))


def resolve_class_path(class_path: str) -> str:
    """Return the class path that will actually be imported for ``class_path``."""
    return SEED_ALIASES.get(class_path, class_path)


class ClassPathError(Exception):
    """A class path that does not name an importable class; the message says why.

    Args:
        message: why.
        missing: the module that is not installed, when that is why.
    """

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing

    @property
    def hint(self) -> str:
        """What to do: the distribution to add, when a module is missing."""
        if self.missing is None:
            return "fix the class path (module.Class), or install the package that provides it"
        import importlib.util

        top = self.missing.split(".")[0]
        if top != self.missing and importlib.util.find_spec(top) is not None:
            return (
                f"{top!r} is installed but has no module {self.missing!r}: fix the class "
                "path, or pin the package version that has it"
            )
        foreign = FOREIGN_PACKAGES.get(top)
        if foreign is not None:
            return foreign
        dist = distribution_for(self.missing)
        if dist is None:
            return (
                f"add the package that provides module {self.missing!r} to requirements.txt, "
                "or fix the path"
            )
        return f"add {dist!r} to requirements.txt (it provides module {self.missing!r})"


# Import names of optional packages that rslearn's data sources and models (and the
# olmoearth_projects configs) import, and the distributions that provide them.
KNOWN_DISTRIBUTIONS = {
    "planetary_computer": "planetary-computer",
    "olmoearth_pretrain_minimal": "olmoearth-pretrain-minimal",
    "olmoearth_pretrain": "olmoearth-pretrain",
    "pystac_client": "pystac-client",
    "pystac": "pystac",
    "ee": "earthengine-api",
    "google": "google-cloud-storage",
    "gcsfs": "gcsfs",
    "s3fs": "s3fs",
    "adlfs": "adlfs",
    "boto3": "boto3",
    "osgeo": "GDAL",
    "cdsapi": "cdsapi",
    "planet": "planet",
    "earthdaily": "earthdaily",
    "satlaspretrain_models": "satlaspretrain-models",
    "terratorch": "terratorch",
    "torchgeo": "torchgeo",
    "timm": "timm",
    "transformers": "transformers",
    "huggingface_hub": "huggingface-hub",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "skimage": "scikit-image",
    "netCDF4": "netCDF4",
    "xarray": "xarray",
    "zarr": "zarr",
    "geopandas": "geopandas",
    "fiona": "fiona",
    "osmium": "osmium",
    "wandb": "wandb",
    "einops": "einops",
}


# Import names of packages that cannot be added to a project's requirements: what to say.
FOREIGN_PACKAGES = {
    "olmoearth_run": (
        "module 'olmoearth_run' is the reference runner's own package, distribution "
        "'olmoearth-runner' (PyPI); it cannot be installed beside this runner's base: "
        "olmoearth-runner 0.1.14 pins torch==2.7.1, torchvision==0.22.1 and rslearn==0.0.27, "
        "the base pins torch==2.14.1 and rslearn>=0.1.19,<0.2 (esbuild lock would refuse it). "
        "Use rslearn's class instead: rslearn.data_sources.planetary_computer.Sentinel2 for "
        "its Sentinel2L2A (the unified format's transpiled dataset does)"
    ),
}


def distribution_for(module: str) -> str | None:
    """The PyPI distribution that provides import name ``module`` (its top-level name).

    From the installed packages' metadata when one provides it (e.g. in another
    environment of the same machine), else from :data:`KNOWN_DISTRIBUTIONS`.
    """
    import importlib.metadata

    top = module.split(".")[0]
    installed = importlib.metadata.packages_distributions().get(top)
    if installed:
        return sorted(installed)[0]
    return KNOWN_DISTRIBUTIONS.get(top)


def load_class(class_path: str) -> type:
    """Import the class named by ``class_path`` (seed aliases allowed).

    Raises:
        ClassPathError: saying why, e.g. ``does not import: ModuleNotFoundError: ...``.
    """
    module_name, _, class_name = resolve_class_path(class_path).rpartition(".")
    if not module_name:
        raise ClassPathError("is not a dotted path 'module.Class'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or any error raised while importing
        missing = e.name if isinstance(e, ModuleNotFoundError) else None
        raise ClassPathError(f"does not import: {type(e).__name__}: {e}", missing) from e
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ClassPathError(f"module {module_name} has no class {class_name!r}")
    return cls


def find_class(class_path: str) -> ClassPathError | None:
    """What :func:`load_class` would say of a class path, without running its module if possible.

    The module is looked up (only its parent packages are imported) and its source read: a
    module that cannot be found, or whose top level defines or imports no such name, gives
    the same :class:`ClassPathError` :func:`load_class` would raise, in milliseconds where
    the import may take seconds (a model class imports torch and Lightning). Use it to refuse
    a broken project before anything heavy runs; :func:`load_class` stays the full check.

    Returns:
        the error, or None when the class is there or only importing the module can tell
        (a compiled module, ``from x import *``, a module ``__getattr__``).
    """
    import importlib.util

    module_name, _, class_name = resolve_class_path(class_path).rpartition(".")
    if not module_name:
        return ClassPathError("is not a dotted path 'module.Class'")
    if module_name in sys.modules:  # imported already: asking is free
        try:
            load_class(class_path)
        except ClassPathError as err:
            return err
        return None
    try:
        spec = _source_spec(module_name) or importlib.util.find_spec(module_name)
    except ModuleNotFoundError as e:
        return ClassPathError(f"does not import: ModuleNotFoundError: {e}", e.name)
    except Exception:  # a parent package failed to import: the import will say how
        return None
    if spec is None:
        why = f"No module named {module_name!r}"
        return ClassPathError(f"does not import: ModuleNotFoundError: {why}", module_name)
    source = _read_source(spec.origin)
    if source is None:
        return None
    names = _top_level_names(source)
    if names is not None and class_name not in names:
        return ClassPathError(f"module {module_name} has no class {class_name!r}")
    for top in _required_packages(source):  # what its import would stop at first
        if importlib.util.find_spec(top) is None:
            why = f"No module named {top!r}"
            return ClassPathError(f"does not import: ModuleNotFoundError: {why}", top)
    return None


def _read_source(origin: str | None) -> ast.Module | None:
    """A Python source file, parsed (None: not a source file, or it does not parse)."""
    if origin is None or not origin.endswith(".py"):
        return None
    try:
        return ast.parse(Path(origin).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None


def _required_packages(tree: ast.Module) -> list[str]:
    """Top-level packages a module imports unconditionally (absolute imports at its top)."""
    out: list[str] = []
    for node in tree.body:  # not inside try/if: those may be optional
        if isinstance(node, ast.Import):
            out += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module.split(".")[0])
    return list(dict.fromkeys(out))


def _source_spec(module_name: str) -> importlib.machinery.ModuleSpec | None:
    """A module's spec found on disk without running its parent packages (None: not so found).

    :func:`importlib.util.find_spec` imports the parents first (``torch.nn`` imports torch:
    seconds); a plain package's submodules lie in its directory, so look there instead.
    """
    from importlib.machinery import PathFinder

    parts = module_name.split(".")
    spec = PathFinder.find_spec(parts[0])
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
    return spec


def module_origin(module_name: str) -> str | None:
    """The file a module is loaded from, found without importing it (None: not so found)."""
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    spec = _source_spec(module_name)
    return spec.origin if spec is not None else None


def _top_level_names(tree: ast.Module) -> set[str] | None:
    """Names a module's source binds at its top level; None when it cannot be told."""
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
        elif isinstance(node, ast.Expr | ast.Pass | ast.Return | ast.Raise | ast.Assert):
            continue
        else:  # match, global, del, ...: rare at a module's top level; let the import tell
            return None
    return names


def binding_problems(
    cls: type, args: dict[str, Any], not_given: frozenset[str] = frozenset()
) -> list[str]:
    """Why ``init_args`` would not bind to ``cls``'s constructor (empty when they do).

    Args:
        cls: the class.
        args: the keyword arguments a config gives.
        not_given: required arguments something else supplies (not reported missing).
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return []
    problems = []
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted((k for k in args if k not in params), key=str)
        if unknown:
            problems.append(
                f"unknown argument(s) {unknown} for {cls.__name__}; it takes {sorted(params)}"
            )
    missing = sorted(
        n
        for n, p in params.items()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in args
        and n not in not_given
    )
    if missing:
        problems.append(f"missing required argument(s) {missing} for {cls.__name__}")
    return problems


def type_problems(cls: type, args: dict[str, Any]) -> list[str]:
    """Arguments whose value does not fit the constructor's type annotation.

    Checked with pydantic (lax: ``10`` fits ``float``, ``"yes"`` fits ``bool`` as it does in
    a pydantic model). An annotation that cannot be resolved is not checked.
    """
    from pydantic import TypeAdapter, ValidationError

    init = next((c.__dict__["__init__"] for c in cls.__mro__ if "__init__" in c.__dict__), None)
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # forward references a plugin's module cannot resolve
        return []
    problems = []
    for name, value in args.items():
        if name not in hints:
            continue
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(hints[name])
        except Exception:  # a type pydantic has no schema for
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as e:
            err = e.errors()[0]
            ann = getattr(hints[name], "__name__", None) or str(hints[name]).replace("typing.", "")
            problems.append(f"{name}: expected {ann}, got {value!r} ({err['msg']})")
    return problems


def key_str(path: tuple[str | int, ...]) -> str:
    """``("layers", "image", "band_sets", 0)`` -> ``layers.image.band_sets[0]``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def class_nodes(
    node: Any, key: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every mapping with a string ``class_path`` in a parsed config, with its key path."""
    if isinstance(node, dict):
        if isinstance(node.get("class_path"), str):
            yield key, node
        for k, v in node.items():
            yield from class_nodes(v, (*key, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from class_nodes(v, (*key, i))


def import_class(class_path: str, *, source: Path, key: str) -> type:
    """Import the class named by ``class_path``.

    Args:
        class_path: dotted path ``package.module.Class`` (seed aliases allowed).
        source: the file the class path came from, for error messages.
        key: the key path of the class path inside ``source``.

    Returns:
        the class.

    Raises:
        ProjectError: when the module or the class cannot be imported.
    """
    try:
        return load_class(class_path)
    except ClassPathError as e:
        raise ProjectError(source, f"class_path {class_path!r} {e}", key, hint=e.hint) from None


def instantiate(
    class_path: str,
    init_args: dict[str, Any] | None,
    base: type[T],
    *,
    source: Path,
    key: str,
) -> T:
    """Import ``class_path``, check it subclasses ``base``, and construct it.

    Args:
        class_path: dotted class path (seed aliases allowed).
        init_args: keyword arguments for the constructor (``None`` means none).
        base: the interface the class must implement.
        source: the file the class path came from, for error messages.
        key: the key path of the strategy inside ``source``.

    Returns:
        the constructed object.

    Raises:
        ProjectError: on import failure, wrong base class, or arguments that do not bind.
    """
    cls = import_class(class_path, source=source, key=f"{key}.class_path")
    if not issubclass(cls, base):
        raise ProjectError(
            source,
            f"{class_path} is not a {base.__name__}",
            f"{key}.class_path",
            hint=f"subclass {base.__module__}.{base.__name__}",
        )
    args = dict(init_args or {})
    problems = binding_problems(cls, args) or type_problems(cls, args)
    if problems:
        raise ProjectError(
            source,
            f"init_args do not fit {cls.__name__}: {'; '.join(problems)}",
            f"{key}.init_args",
        )
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise ProjectError(
            source, f"{cls.__name__}({args}) failed: {e}", f"{key}.init_args"
        ) from None
