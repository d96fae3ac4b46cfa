"""Rule: every ``class_path`` imports, and its ``init_args`` bind to the constructor."""

from __future__ import annotations

from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document, KeyPath
from rslp.checks.project import ProjectDocs
from rslp.plugins import (
    ClassPathError,
    binding_problems,
    class_nodes,
    load_class,
    type_problems,
)

# Arguments that something other than the config supplies.
INJECTED = frozenset({"context"})  # rslearn passes a DataSourceContext to every data source
LINKED: dict[KeyPath, frozenset[str]] = {
    ("model",): frozenset({"task"})
}  # rslearn's LightningCLI links data.init_args.task here
DATA_SOURCE_FIELDS = {"query_config", "time_offset", "duration", "ingest", "name"}


def check_class(
    doc: Document,
    key: KeyPath,
    class_path: str,
    args: dict[str, Any],
    skip_missing: frozenset[str] = frozenset(),
    check_types: bool = False,
) -> list[Diagnostic]:
    """Import one class path and bind its arguments; diagnostics located at ``key``.

    With ``check_types`` (strategies, which the runner constructs itself), each value is
    also checked against the constructor's annotation.
    """
    try:
        cls = load_class(class_path)
    except ClassPathError as err:
        return [
            doc.diag(
                f"class_path {class_path!r} {err}",
                (*key, "class_path"),
                hint=err.hint,
                rule="class_path",
            )
        ]
    return [
        doc.diag(
            p, (*key, "init_args"), hint="compare with the class's constructor", rule="class_path"
        )
        for p in binding_problems(cls, args, skip_missing | INJECTED)
        or (type_problems(cls, args) if check_types else [])
    ]


def _strategies(project: ProjectDocs, name: str) -> list[Diagnostic]:
    doc = project.valid(name)
    if doc is None:
        return []
    out = []
    for k, v in doc.data.items():
        if isinstance(v, dict) and isinstance(v.get("class_path"), str):
            out += check_class(
                doc, (k,), v["class_path"], v.get("init_args") or {}, check_types=True
            )
    return out


def _data_sources(project: ProjectDocs) -> list[Diagnostic]:
    doc = project.valid("dataset.json")
    if doc is None:
        return []
    layers = doc.data["layers"]
    out = []
    for lname, layer in layers.items():
        ds = layer.get("data_source") if isinstance(layer, dict) else None
        if not isinstance(ds, dict):
            continue
        key: KeyPath = ("layers", lname, "data_source")
        if isinstance(ds.get("class_path"), str):
            out += check_class(doc, key, ds["class_path"], ds.get("init_args") or {})
        elif isinstance(ds.get("name"), str):  # rslearn's legacy form: arguments inline
            args = {k: v for k, v in ds.items() if k not in DATA_SOURCE_FIELDS}
            diags = check_class(doc, key, ds["name"], args)
            out += [
                d.__class__(
                    **{
                        **d.__dict__,
                        "key": d.key.replace(".class_path", ".name") if d.key else d.key,
                    }
                )
                for d in diags
            ]
    return out


def _model(project: ProjectDocs) -> list[Diagnostic]:
    doc = project.docs.get("model.yaml")
    if doc is None or not isinstance(doc.data, dict):
        return []
    out = []
    for key, node in class_nodes(doc.data):
        init = node.get("init_args")
        args: dict[str, Any] = init if isinstance(init, dict) else {}
        out += check_class(doc, key, node["class_path"], args, LINKED.get(key, frozenset()))
    return out


def check_class_paths(project: ProjectDocs) -> list[Diagnostic]:
    """Strategies, data sources and model parts: import and bind each class."""
    return (
        _strategies(project, "partition_strategies.yaml")
        + _strategies(project, "postprocessing_strategies.yaml")
        + _data_sources(project)
        + _model(project)
    )
