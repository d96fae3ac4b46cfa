"""Dataset step: create a partition's rslearn windows and prepare/ingest/materialize them."""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rasterio.crs import CRS
from rslearn.template_params import substitute_env_vars_in_string
from upath import UPath

from rslp.errors import ProjectError, StepError
from rslp.fsutil import write_json_atomic
from rslp.logs import quiet_libraries
from rslp.runner.context import RunContext
from rslp.runner.guard import trap_exit
from rslp.runner.outcomes import PartitionOutcome, Rejection, rejected_names, write_outcome
from rslp.runner.partition import partition_windows
from rslp.runner.retry import RetriesExhaustedError, RetryPolicy, call_with_retries
from rslp.runner.scratch import Scratch

logger = logging.getLogger(__name__)

LOCAL_FILES = "rslearn.data_sources.local_files.LocalFiles"


def _link_tree(src_dir: Path, dst_dir: Path) -> None:
    """Mirror ``src_dir`` as real directories holding symlinks to its files.

    LocalFiles writes a ``summary.json`` cache into its source directory; pointing it at
    this mirror keeps that cache in scratch and the project directory untouched. When
    files were added to or removed from ``src_dir`` since the last mirror (a new scene
    arrived), the cache is dropped so that LocalFiles lists the files again.
    """
    changed = False
    wanted: set[Path] = set()
    for path in sorted(src_dir.rglob("*")):
        if path.is_dir() or path.name.endswith(".json"):
            continue
        link = dst_dir / path.relative_to(src_dir)
        wanted.add(link)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and os.readlink(link) == str(path):
            continue
        # Made beside the mirror (LocalFiles lists every file in it) under a name of this
        # process's, and renamed over: workers of one run mirror the same files at once.
        tmp = dst_dir.parent / f".{dst_dir.name}.{os.getpid()}.link"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(path)
        os.replace(tmp, link)
        changed = True
    for link in list(dst_dir.rglob("*")) if dst_dir.is_dir() else []:
        if link.is_symlink() and link not in wanted:
            link.unlink(missing_ok=True)
            changed = True
    if changed:
        (dst_dir / "summary.json").unlink(missing_ok=True)


_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


def unset_env_vars(text: str) -> list[str]:
    """The ``${VAR}`` names in ``text`` that are not set (rslearn would read them as '')."""
    return [m.group(1) for m in _ENV_VAR.finditer(text) if not os.environ.get(m.group(1))]


def local_files_source(layer: Any, project_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """For a LocalFiles layer reading a local directory: its arguments and that directory.

    Args:
        layer: a layer of dataset.json (parsed JSON).
        project_dir: what a relative ``src_dir`` is relative to.

    Returns:
        (the data source's argument mapping, which holds ``src_dir`` (``init_args``, or
        the data source itself in rslearn's legacy ``name`` form), the resolved
        directory), or None for other layers and for URLs.
    """
    ds = layer.get("data_source") if isinstance(layer, dict) else None
    if not isinstance(ds, dict) or (ds.get("class_path") or ds.get("name")) != LOCAL_FILES:
        return None
    args = ds.get("init_args") if "class_path" in ds else ds
    if not isinstance(args, dict):
        return None
    src = args.get("src_dir")
    if not isinstance(src, str):
        return None
    src = substitute_env_vars_in_string(src)  # as rslearn reads dataset configs
    if "://" in src:
        return None
    return args, (Path(src) if Path(src).is_absolute() else project_dir / src)


def write_dataset_config(ctx: RunContext) -> dict[str, Any]:
    """Write ``dataset/config.json`` of a run (see :func:`write_config`)."""
    return write_config(
        ctx.dataset_config, ctx.files.dataset_json, ctx.scratch, ctx.files.project_dir
    )


def write_config(
    dataset_config: dict[str, Any],
    dataset_json: Path,
    scratch: Scratch,
    project_dir: Path | None = None,
) -> dict[str, Any]:
    """Write ``<scratch>/dataset/config.json``: dataset.json with project-relative paths resolved.

    A LocalFiles ``src_dir`` that is a relative path means relative to the project
    directory (``project_dir``, default where dataset.json lives; a unified project's
    transpiled dataset.json lives elsewhere); it is mirrored into ``inputs/local_files``.

    Returns:
        the written config.
    """
    cfg = copy.deepcopy(dataset_config)
    for name, layer in cfg["layers"].items():
        found = local_files_source(layer, project_dir or dataset_json.parent)
        if found is None:
            continue
        args, src_path = found
        src = args["src_dir"]
        if unset_env_vars(src) or not src_path.is_dir():
            raise ProjectError(
                dataset_json,
                f"LocalFiles src_dir {src!r} is not a directory ({src_path})",
                f"layers.{name}.data_source.init_args.src_dir",
                hint="relative paths are relative to the project directory",
            )
        mirror = scratch.inputs / "local_files" / name
        _link_tree(src_path.resolve(), mirror)
        args["src_dir"] = str(mirror)
    write_json_atomic(scratch.dataset / "config.json", cfg)
    return cfg


def open_dataset(ctx: RunContext) -> Any:
    """Open the run's scratch rslearn dataset (see :func:`open_dataset_at`)."""
    if not (ctx.scratch.dataset / "config.json").exists():
        write_dataset_config(ctx)
    return open_dataset_at(ctx.scratch, ctx.files.dataset_json)


def open_dataset_at(scratch: Scratch, dataset_json: Path) -> Any:
    """Open ``<scratch>/dataset`` (rslearn validates config.json here; errors name dataset.json)."""
    from pydantic import ValidationError
    from rslearn.dataset import Dataset

    try:
        dataset = Dataset(UPath(scratch.dataset))
    except ValidationError as e:
        err = e.errors()[0]
        raise ProjectError(
            dataset_json,
            f"rslearn rejects the dataset config: {err['msg']}",
            ".".join(str(p) for p in err["loc"]),
        ) from None
    quiet_libraries()  # data source modules were just imported, with console handlers
    return dataset


Problems = dict[tuple[str, str], list[Any]]


def _materialize_problems(dataset: Any, windows: list[Any], failed: str | None) -> Problems:
    """(layer, why) -> the windows whose layer did not materialize, for that reason.

    Each window is listed once, under its first layer that did not materialize. With
    ``failed`` (a data source gave up after its retries), an unfinished layer is
    ``source_failed``; otherwise ``no_items`` or ``not_materialized``.
    """
    problems: Problems = {}
    for w in windows:
        for layer_name, layer_cfg in dataset.layers.items():
            if layer_cfg.data_source is None or w.is_layer_completed(layer_name):
                continue
            if failed is not None:
                why = "source_failed"
            else:
                datas = w.load_layer_datas()
                groups = datas[layer_name].serialized_item_groups if layer_name in datas else []
                why = "no_items" if not any(groups) else "not_materialized"
            problems.setdefault((layer_name, why), []).append(w)
            break
    return problems


def materialize_error(
    ctx: Any, partition_id: str | None, problems: dict[Any, list[Any]]
) -> StepError:
    """The first problem, in words naming the files to look at; features listed apart.

    The message has no window names or counts, so the same problem in every partition
    is reported once (with every partition and feature it hit).
    """
    (layer, why), windows = next(iter(problems.items()))
    features = sorted({f for w in windows for f in (w.options or {}).get("feature_ids", [])})
    key = f"{ctx.files.dataset_json.name} layers.{layer}.data_source"
    request = getattr(ctx.files, "request_geojson", None)  # a fine-tune has tasks instead
    where = (
        f"the request ({request})"
        if request is not None
        else f"each annotation task ({ctx.files.tasks})"
    )
    if why == "source_failed":
        msg = f"layer {layer!r} ({key}): the data source failed after every retry"
    elif why == "no_items":
        msg = (
            f"no imagery for some windows: layer {layer!r} ({key}) has no item covering "
            f"them at their time; check that {where} lies over the imagery and inside its "
            "time range"
        )
    else:
        msg = (
            f"layer {layer!r} ({key}): items matched but nothing was materialized (do the "
            "band names match the source? LocalFiles names bands B1..Bn unless "
            "raster_item_specs name them)"
        )
    if len(problems) > 1:
        msg += f"; and {len(problems) - 1} other layer problem(s)"
    return StepError("dataset", msg, partition_id, tuple(features))


def create_windows(ctx: RunContext, partition_id: str) -> tuple[Any, list[Any]]:
    """Write the partition's planned windows into the scratch dataset (as its group).

    Returns:
        the rslearn dataset and the partition's windows.
    """
    from rslearn.dataset import Window
    from rslearn.utils.geometry import Projection

    specs = partition_windows(ctx, partition_id)
    write_dataset_config(ctx)
    dataset = open_dataset(ctx)
    for spec in specs:
        Window(
            storage=dataset.storage,
            group=partition_id,
            name=spec.name,
            projection=Projection(CRS.from_string(spec.crs), spec.resolution, -spec.resolution),
            bounds=spec.bounds,
            time_range=spec.time_range,
            options={"feature_ids": spec.feature_ids, "partition_id": partition_id},
        ).save()
    windows = dataset.load_windows(groups=[partition_id], names=[s.name for s in specs])
    if len(windows) != len(specs):
        raise StepError(
            "dataset", f"created {len(specs)} windows, found {len(windows)}", partition_id
        )
    return dataset, windows


def _forget_rejected(ctx: RunContext, partition_id: str) -> None:
    """Remove the windows a previous dataset step rejected, so they are tried anew.

    rslearn keeps a window's empty item list and would not ask the data source again;
    the window (metadata only: it has no data) is made again by :func:`create_windows`.
    """
    for name in rejected_names(ctx.scratch, partition_id):
        shutil.rmtree(ctx.scratch.dataset / "windows" / partition_id / name, ignore_errors=True)


def build_dataset(ctx: RunContext, partition_id: str) -> dict[str, int]:
    """Create the partition's windows and materialize every layer that has a data source.

    rslearn is called through its Python API with errors raised, not ignored; transient
    data-source faults are retried (``dataset_build`` of the partition config). A window
    that does not materialize is *rejected* (``outcomes/<partition>.json`` says which
    layer and why), not an error; a rerun tries the rejected windows again.

    Returns:
        ``{"windows", "ready", "rejected"}``.

    Raises:
        StepError: when a data source fails with an error that is not transient.
    """
    _forget_rejected(ctx, partition_id)
    dataset, windows = create_windows(ctx, partition_id)
    policy = RetryPolicy.from_config(ctx.partition_config.dataset_build)
    problems, failure = materialize(dataset, windows, ctx.scratch, "dataset", partition_id, policy)
    rejected = [
        Rejection(w.name, layer, why, failure or "", list((w.options or {}).get("feature_ids", [])))
        for (layer, why), ws in problems.items()
        for w in ws
    ]
    outcome = PartitionOutcome(partition_id, len(windows), sorted(rejected, key=lambda r: r.name))
    write_outcome(ctx.scratch, outcome)
    if rejected:
        logger.info(
            "partition %s: %d of %d window(s) rejected (%s)",
            partition_id,
            len(rejected),
            len(windows),
            materialize_error(ctx, partition_id, problems).detail,
        )
    return outcome.counts()


def materialize(
    dataset: Any,
    windows: list[Any],
    scratch: Scratch,
    step: str,
    partition_id: str | None,
    policy: RetryPolicy,
) -> tuple[Problems, str | None]:
    """Rslearn prepare, ingest and materialize of ``windows``, with errors raised.

    Each phase is retried on transient faults as ``policy`` says (rslearn skips what a
    phase already finished). A phase that still fails ends the work: the windows it left
    unfinished are reported ``source_failed``.

    Returns:
        ((layer, why) -> the windows whose layer did not materialize (empty when all
        did), the error that outlived the retries or None).

    Raises:
        StepError: when a data source fails with an error that is not transient.
    """
    from rslearn.dataset.manage import (
        ingest_dataset_windows,
        materialize_dataset_windows,
        prepare_dataset_windows,
    )

    quiet_libraries()  # rslearn's modules add console handlers as they are imported
    failure: str | None = None
    where = f"partition {partition_id}: " if partition_id else ""
    with scratch.tmpdir():
        for what, fn in (
            ("prepare", lambda: prepare_dataset_windows(dataset, windows, ignore_errors=False)),
            ("ingest", lambda: ingest_dataset_windows(dataset, windows)),
            ("materialize", lambda: materialize_dataset_windows(dataset, windows)),
        ):
            try:
                with trap_exit(step, partition_id, f"rslearn {what}"):
                    call_with_retries(fn, policy, f"{where}rslearn {what}")
            except StepError:
                raise
            except RetriesExhaustedError as e:
                failure = str(e)
                logger.warning("%s%s", where, failure)
                break
            except Exception as e:  # a data source can raise anything
                raise StepError(
                    step, f"rslearn {what} failed: {type(e).__name__}: {e}", partition_id
                ) from e
    return _materialize_problems(dataset, windows, failure), failure
