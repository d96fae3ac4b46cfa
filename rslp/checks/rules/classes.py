"""Rules: every ``class_path`` names a class, and its ``init_args`` bind to the constructor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document, KeyPath
from rslp.checks.project import ProjectDocs
from rslp.plugins import (
    ClassPathError,
    binding_problems,
    class_nodes,
    find_class,
    load_class,
    resolve_class_path,
    type_problems,
)

# Arguments that something other than the config supplies.
INJECTED = frozenset({"context"})  # rslearn passes a DataSourceContext to every data source
LINKED: dict[KeyPath, frozenset[str]] = {
    ("model",): frozenset({"task"})
}  # rslearn's LightningCLI links data.init_args.task here
DATA_SOURCE_FIELDS = {"query_config", "time_offset", "duration", "ingest", "name"}


@dataclass(frozen=True)
class ClassSite:
    """One ``class_path`` of a project: where it is and what its constructor is given."""

    doc: Document
    key: KeyPath
    class_path: str
    args: dict[str, Any]
    skip_missing: frozenset[str] = frozenset()
    check_types: bool = False
    name_key: bool = False  # rslearn's legacy data source form: ``name`` holds the class

    def diag(self, message: str, key: KeyPath, hint: str) -> Diagnostic:
        """A ``class_path`` diagnostic at ``key`` (``...name`` for the legacy form)."""
        d = self.doc.diag(message, key, hint=hint, rule="class_path")
        if self.name_key and d.key:
            d = replace(d, key=d.key.replace(".class_path", ".name"))
        return d

    @property
    def module(self) -> str:
        """The module its class is in (the class path resolved, aliases mapped)."""
        return resolve_class_path(self.class_path).rpartition(".")[0]

    @property
    def own(self) -> bool:
        """Whether its class is this package's own (it imports in a blink)."""
        return resolve_class_path(self.class_path).startswith("rslp.")

    @property
    def class_key(self) -> str | None:
        """The key path its class path is reported at."""
        return self.diag("", (*self.key, "class_path"), "").key

    def missing(self, err: ClassPathError) -> Diagnostic:
        """The class path names no class."""
        return self.diag(
            f"class_path {self.class_path!r} {err}", (*self.key, "class_path"), err.hint
        )


def check_class(site: ClassSite) -> list[Diagnostic]:
    """Import one class path and bind its arguments; diagnostics located at its key.

    With ``check_types`` (strategies, which the runner constructs itself), each value is
    also checked against the constructor's annotation.
    """
    try:
        cls = load_class(site.class_path)
    except ClassPathError as err:
        return [site.missing(err)]
    problems = binding_problems(cls, site.args, site.skip_missing | INJECTED)
    if not problems and site.check_types:
        problems = type_problems(cls, site.args)
    return [
        site.diag(p, (*site.key, "init_args"), "compare with the class's constructor")
        for p in problems
    ]


def _strategies(project: ProjectDocs, name: str) -> Iterator[ClassSite]:
    doc = project.valid(name)
    if doc is None:
        return
    for k, v in doc.data.items():
        if isinstance(v, dict) and isinstance(v.get("class_path"), str):
            yield ClassSite(doc, (k,), v["class_path"], v.get("init_args") or {}, check_types=True)


def _data_sources(project: ProjectDocs) -> Iterator[ClassSite]:
    doc = project.valid("dataset.json")
    if doc is None:
        return
    for lname, layer in doc.data["layers"].items():
        ds = layer.get("data_source") if isinstance(layer, dict) else None
        if not isinstance(ds, dict):
            continue
        key: KeyPath = ("layers", lname, "data_source")
        if isinstance(ds.get("class_path"), str):
            yield ClassSite(doc, key, ds["class_path"], ds.get("init_args") or {})
        elif isinstance(ds.get("name"), str):  # rslearn's legacy form: arguments inline
            args = {k: v for k, v in ds.items() if k not in DATA_SOURCE_FIELDS}
            yield ClassSite(doc, key, ds["name"], args, name_key=True)


def _model(project: ProjectDocs) -> Iterator[ClassSite]:
    doc = project.docs.get("model.yaml")
    if doc is None or not isinstance(doc.data, dict):
        return
    for key, node in class_nodes(doc.data):
        init = node.get("init_args")
        args: dict[str, Any] = init if isinstance(init, dict) else {}
        yield ClassSite(doc, key, node["class_path"], args, LINKED.get(key, frozenset()))


def class_sites(project: ProjectDocs) -> list[ClassSite]:
    """Every class path of a project: strategies, data sources, model parts."""
    return [
        *_strategies(project, "partition_strategies.yaml"),
        *_strategies(project, "postprocessing_strategies.yaml"),
        *_data_sources(project),
        *_model(project),
    ]


def check_class_sources(project: ProjectDocs) -> list[Diagnostic]:
    """Every class path names a class, told from the modules' sources without importing them.

    Milliseconds, where importing a model's classes takes seconds: so a run refuses a wrong
    class path (or a module that is not installed) before anything heavy starts.
    This package's own classes (strategies) import cheaply and are checked whole here;
    :func:`check_class_paths` imports the rest and binds their arguments.
    """
    out = []
    for site in class_sites(project):
        if site.own:  # this package's strategies import in a blink: check them whole
            out += check_class(site)
        elif (err := find_class(site.class_path)) is not None:
            out.append(site.missing(err))
    return out


def check_class_paths(project: ProjectDocs) -> list[Diagnostic]:
    """Strategies, data sources and model parts: import and bind each class.

    This package's own classes and the class paths :func:`check_class_sources` reported
    are not checked again.
    """
    reported = {(d.file, d.key) for d in project.found if d.rule == "class_path"}
    out: list[Diagnostic] = []
    for site in class_sites(project):
        if not site.own and (site.doc.path, site.class_key) not in reported:
            out += check_class(site)
    return out
