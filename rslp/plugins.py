"""Load strategy classes by ``class_path`` and bind their ``init_args``.

Class paths written for the seed's runner (``esrun.tools.partitioners.*`` and
``esrun.tools.postprocessors.*``) resolve to this package's implementations, so projects
written for the seed keep working. Any other class path is imported from the PYTHONPATH.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, TypeVar

from rslp.errors import ProjectError

T = TypeVar("T")

# Seed class paths -> ours. Module-level aliases map a whole seed module to one of ours.
SEED_ALIASES: dict[str, str] = {
    "esrun.tools.partitioners.noop_partitioner.NoopPartitioner": (
        "rslp.common.partitioners.noop.NoopPartitioner"
    ),
    "esrun.tools.partitioners.fixed_window_partitioner.FixedWindowPartitioner": (
        "rslp.common.partitioners.fixed_window.FixedWindowPartitioner"
    ),
    "esrun.tools.partitioners.grid_partitioner.GridPartitioner": (
        "rslp.common.partitioners.grid.GridPartitioner"
    ),
    "esrun.tools.partitioners.partition_interface.PartitionInterface": (
        "rslp.common.partitioners.interface.PartitionInterface"
    ),
    "esrun.tools.postprocessors.noop_raster.NoopRaster": (
        "rslp.common.postprocessing.raster.NoopRaster"
    ),
    "esrun.tools.postprocessors.combine_geotiff.CombineGeotiff": (
        "rslp.common.postprocessing.raster.CombineGeotiff"
    ),
    "esrun.tools.postprocessors.combine_geojson.CombineGeojson": (
        "rslp.common.postprocessing.vector.CombineGeojson"
    ),
    "esrun.tools.postprocessors.noop_vector.NoopVector": (
        "rslp.common.postprocessing.vector.NoopVector"
    ),
    "esrun.tools.postprocessors.postprocess_inferface.PostprocessInterface": (
        "rslp.common.postprocessing.interface.PostprocessInterface"
    ),
    "esrun.tools.postprocessors.postprocess_interface.PostprocessInterface": (
        "rslp.common.postprocessing.interface.PostprocessInterface"
    ),
}


def resolve_class_path(class_path: str) -> str:
    """Return the class path that will actually be imported for ``class_path``."""
    return SEED_ALIASES.get(class_path, class_path)


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
    resolved = resolve_class_path(class_path)
    module_name, _, class_name = resolved.rpartition(".")
    if not module_name:
        raise ProjectError(
            source, f"class_path {class_path!r} is not a dotted path 'module.Class'", key
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ProjectError(
            source,
            f"class_path {class_path!r}: module {module_name!r} does not import ({e})",
            key,
            hint="is the package installed, or the module on the PYTHONPATH?",
        ) from e
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ProjectError(
            source, f"class_path {class_path!r}: {module_name} has no class {class_name!r}", key
        )
    return cls


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
    try:
        inspect.signature(cls).bind(**args)
    except TypeError as e:
        raise ProjectError(
            source, f"init_args do not fit {cls.__name__}: {e}", f"{key}.init_args"
        ) from None
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise ProjectError(
            source, f"{cls.__name__}({args}) failed: {e}", f"{key}.init_args"
        ) from None
