"""What every rule reads: the project's parsed documents and the check options.

Both front doors build a :class:`ProjectDocs`: ``esbuild validate`` from a project directory
(every request in it), the runner's preflight from the files of one run
(:meth:`ProjectDocs.from_files`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rslp import formats
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.documents import Document, load_document
from rslp.errors import ProjectError
from rslp.formats.unified import DATA_SOURCES_YAML, read_overrides
from rslp.formats.unified.transpile import modality_of
from rslp.project import ProjectFiles, request_files
from rslp.variants import Variant, choose, list_variants, missing_model

# Role of each config file (the name rules look it up by) -> ProjectFiles attribute.
ROLES = {
    "dataset.json": "dataset_json",
    "model.yaml": "model_yaml",
    "partition_strategies.yaml": "partition_strategies_yaml",
    "postprocessing_strategies.yaml": "postprocessing_strategies_yaml",
}
SECTION_ROLES = (formats.PARTITION_ROLE, formats.POSTPROCESSING_ROLE)
DEFAULT_MAX_WINDOWS = 10_000_000


@dataclass
class ProjectDocs:
    """A project directory, parsed.

    Attributes:
        root: the project directory.
        docs: file name (``dataset.json``, ``model.yaml``, ...) -> parsed document. In the
            reference format ``olmoearth_run.yaml`` is there too, and each strategy role is
            its section (:meth:`Document.section`).
        requests: the prediction request documents.
        checkpoint: ``checkpoint.ckpt`` when present.
        requirements: ``requirements.txt`` when present.
        deep: also load the checkpoint into the model.
        allow_sources: allow requirement options that change where packages come from.
        found: diagnostics found so far (rules may look, e.g. to avoid repeating one).
        model_cli: the parsed rslearn LightningCLI of model.yaml, once a rule made it.
        for_run: checking before a run (preflight): data the run reads must be there
            (``esbuild validate`` only warns, as imagery is rarely in a checkout).
        max_windows: the most windows a plan may make.
        finetune: the fine-tune's files (a ``FinetuneFiles``) when they are checked.
        variant: the model variant checked (:mod:`rslp.variants`), when known.
    """

    root: Path
    docs: dict[str, Document]
    requests: list[Document]
    checkpoint: Path | None = None
    requirements: Path | None = None
    deep: bool = False
    allow_sources: bool = False
    found: list[Diagnostic] = field(default_factory=list)
    model_cli: object = None
    for_run: bool = False
    max_windows: int = DEFAULT_MAX_WINDOWS
    finetune: Any = None
    variant: Variant | None = None
    source: Path | None = None
    transpiled: Path | None = None

    def _override_key(self, d: Diagnostic) -> str | None:
        """The key in ``data_sources.yaml`` of a finding about an overridden data source.

        A finding in a layer's ``data_source``, or a LocalFiles finding about what its
        files give (``raster_item_specs``), is the override's.
        """
        if self.source is None or d.file.name != "dataset.json" or not d.key:
            return None
        m = re.match(r"^layers\.([^.\[]+)\.(.*)$", d.key)
        if m is None:
            return None
        layer, rest = m.group(1), m.group(2)
        if rest.startswith("data_source"):
            rest = rest.removeprefix("data_source")
        elif d.rule == "local_files":
            rest = ".init_args.raster_item_specs"
        else:
            return None
        given, _ = read_overrides(self.source.parent)
        for name in (layer, modality_of(layer)):
            if name and given is not None and isinstance(given.get(name), dict):
                return name + rest
        return None

    def shown(self, d: Diagnostic) -> Diagnostic:
        """``d`` as the author sees it.

        A finding in a unified project's transpiled file names the project's
        ``olmoearth_config.yaml`` (and the transpiled file's key).
        """
        if self.source is None or self.transpiled is None:
            return d
        if not d.file.is_relative_to(self.transpiled):
            return d
        override = self._override_key(d)
        if override is not None:  # a source of data_sources.yaml: named there
            return dataclasses.replace(
                d, file=self.source.parent / DATA_SOURCES_YAML, key=override, line=None
            )
        key = f"(transpiled {d.file.name}) {d.key}" if d.key else f"(transpiled {d.file.name})"
        out = dataclasses.replace(d, file=self.source, key=key, line=None)
        network = (
            d.key is not None
            and d.key.endswith(".data_source.class_path")
            and "does not import" in d.message
        )
        if network and not self.for_run:
            # The runner chose this source, not the author: the run needs its package, or
            # data_sources.yaml names another source (imagery of the project's own).
            out = dataclasses.replace(
                out,
                severity="notice",
                message="the transpiled data source cannot be imported here: " + d.message,
                hint=(d.hint + "; or " if d.hint else "")
                + "replace the source in data_sources.yaml (docs/formats.md)",
            )
        return out

    def data(self, name: str) -> object:
        """The parsed content of a document, or None when missing or broken."""
        doc = self.docs.get(name)
        return None if doc is None else doc.data

    def has_errors(self, doc: Document) -> bool:
        """Whether an error was found in ``doc`` so far (e.g. by the schema rule)."""
        return any(d.file == doc.path and d.severity == "error" for d in self.found)

    def valid(self, name: str) -> Document | None:
        """The document when it parsed and has no error so far, else None.

        A document without errors has its schema's shape; rules that read its structure
        skip it otherwise.
        """
        doc = self.docs.get(name)
        return None if doc is None or self.has_errors(doc) else doc

    @staticmethod
    def load(
        root: Path,
        paths: dict[str, Path],
        requests: list[Path],
        **options: object,
    ) -> tuple[ProjectDocs, list[Diagnostic]]:
        """Parse a project's files; missing files and syntax errors become diagnostics.

        Args:
            root: the project directory (relative data paths are relative to it).
            paths: role (``dataset.json``, ...) -> the file playing it.
            requests: the prediction request files.
            options: :class:`ProjectDocs` fields (``checkpoint``, ``for_run``, ...).

        Returns:
            the parsed project (documents that did not parse left out) and the problems.
        """
        diags: list[Diagnostic] = []
        docs = {}
        for role, path in paths.items():
            if role in docs or (role in SECTION_ROLES and formats.RUN_YAML in docs):
                continue
            if formats.is_run_config(path) and any(d.file == path for d in diags):
                continue  # its syntax error is reported once
            doc, errs = load_document(path)
            diags += errs
            if not errs and formats.is_run_config(path) and role in SECTION_ROLES:
                docs[formats.RUN_YAML] = doc
                for r in SECTION_ROLES:
                    docs[r] = doc.section(r)
                if formats.has_section(doc.data, formats.FINETUNE_ROLE):
                    docs[formats.FINETUNE_ROLE] = doc.section(formats.FINETUNE_ROLE)
            elif not errs:
                docs[role] = doc
        parsed = []
        for path in requests:
            doc, errs = load_document(path)
            diags += errs
            if not errs:
                collection, notes = _as_collection(doc)
                parsed.append(collection)
                diags += notes
        project = ProjectDocs(root=root, docs=docs, requests=parsed, **options)  # type: ignore[arg-type]
        project.found = list(diags)
        return project, diags

    @staticmethod
    def from_dir(
        root: Path, finetune: bool = False, variant: Variant | None = None, **options: object
    ) -> tuple[ProjectDocs, list[Diagnostic]]:
        """A project directory in either format, one variant of it.

        Its config files, every request in it and its checkpoint. The annotation files of
        a fine-tune config are checked when they are present or ``finetune`` is asked
        for; otherwise a notice says fine-tuning will need them. A directory without a
        request gets a warning (a run brings its own).

        Args:
            root: the project directory.
            finetune: require the fine-tune's annotation files.
            variant: the model variant (:func:`variants_of`); default: the directory's
                only or default one (several without a default: one error naming them).
            options: :class:`ProjectDocs` fields.
        """
        requests = request_files(root)
        try:
            fmt = formats.detect_format(root)
        except formats.FormatError as e:
            bad = Diagnostic(e.path, str(e), hint=e.hint, rule="files")
            return ProjectDocs(root=root, docs={}, requests=[], found=[bad]), [bad]
        if variant is None:
            try:
                variant = choose(root)
            except ProjectError as e:
                bad = Diagnostic(e.path, e.message, hint=e.hint, rule="files")
                return ProjectDocs(root=root, docs={}, requests=[], found=[bad]), [bad]
        if fmt == formats.UNIFIED:
            return _unified_docs(root, variant, requests, **options)
        run = variant.run_config or root / formats.RUN_YAML
        paths = {role: root / role for role in ROLES}
        paths["model.yaml"] = variant.model_config
        if fmt == formats.REFERENCE:
            paths.update({r: run for r in SECTION_ROLES})
        notes: list[Diagnostic] = []
        if _has_finetune(root, run):
            cfg = root / formats.FINETUNE_ROLE
            if cfg.is_file():
                paths[formats.FINETUNE_ROLE] = cfg
            annotations = {r: root / ANNOTATIONS_DIR / r for r in ANNOTATION_FILES}
            if finetune or any(p.is_file() for p in annotations.values()):
                paths.update(annotations)
            else:  # a prediction never reads them; a hosted service often supplies them
                notes.append(
                    Diagnostic(
                        cfg if cfg.is_file() else run,
                        "fine-tuning will need "
                        + " and ".join(f"{ANNOTATIONS_DIR}/{r}" for r in ANNOTATION_FILES)
                        + " (a prediction does not read them)",
                        key=None if cfg.is_file() else "window_prep",
                        hint="add them before esrunner finetune; validate --finetune checks them",
                        rule="finetune",
                        severity="notice",
                    )
                )
        project, diags = _load_variant(root, variant, paths, requests, **options)
        no_model = missing_model(variant)
        if no_model is not None:  # say which variant lacks it, not only "model.yaml"
            bad = Diagnostic(no_model.path, no_model.message, hint=no_model.hint, rule="files")
            lost = [d for d in diags if d.file == variant.model_config and d.rule == "files"]
            project.found = [d for d in project.found if d not in lost] + [bad]
            diags = [d for d in diags if d not in lost] + [bad]
        if _has_finetune(root, run):
            from rslp.finetune.context import FinetuneFiles

            with contextlib.suppress(ProjectError):  # the fine-tune rule reports it
                project.finetune = FinetuneFiles.from_dir(root, variant)
        if not requests:  # the request belongs to a run, not to the model
            project.found.append(_no_request(root))
            diags.append(project.found[-1])
        project.found += notes
        return project, diags + notes

    @staticmethod
    def from_finetune(files: Any) -> tuple[ProjectDocs, list[Diagnostic]]:
        """A fine-tune's files (``FinetuneFiles``), checked as the fine-tune will use them."""
        paths = {
            "dataset.json": files.dataset_json,
            "model.yaml": files.model_yaml,
            ANNOTATION_FILES[0]: files.tasks,
            ANNOTATION_FILES[1]: files.annotations,
        }
        role = formats.PARTITION_ROLE if files.reference else formats.FINETUNE_ROLE
        paths[role] = files.finetune_yaml
        return ProjectDocs.load(files.project_dir, paths, [], finetune=files)

    @staticmethod
    def from_files(
        files: ProjectFiles, max_windows: int = DEFAULT_MAX_WINDOWS
    ) -> tuple[ProjectDocs, list[Diagnostic]]:
        """The files of one run, checked as the run will use them (``for_run``)."""
        project, diags = ProjectDocs.load(
            files.project_dir,
            {role: getattr(files, attr) for role, attr in ROLES.items()},
            [files.request_geojson],
            checkpoint=files.checkpoint,
            for_run=True,
            max_windows=max_windows,
        )
        if files.source is not None:
            project.source = files.source
            project.transpiled = files.model_yaml.parent
        return project, diags


ANNOTATIONS_DIR = "annotations"
ANNOTATION_FILES = ("annotation_task_features.geojson", "annotation_features.geojson")


def variants_of(
    root: Path, run_config: Path | str | None = None, model_config: Path | str | None = None
) -> list[Variant]:
    """The variants to check: the one chosen by the flags, else every one in the directory.

    Raises:
        ProjectError: a file given does not exist or is not a run config.
    """
    if run_config is not None or model_config is not None:
        return [choose(root, run_config, model_config)]
    return list_variants(root) or [choose(root)]


def _load_variant(
    root: Path, variant: Variant, paths: dict[str, Path], requests: list[Path], **options: Any
) -> tuple[ProjectDocs, list[Diagnostic]]:
    """:meth:`ProjectDocs.load` with the variant's checkpoint and the requirements."""
    ckpt = variant.checkpoint(root)
    reqs = root / "requirements.txt"
    project, diags = ProjectDocs.load(
        root,
        paths,
        requests,
        checkpoint=ckpt if ckpt.exists() else None,
        requirements=reqs if reqs.exists() else None,
        **options,
    )
    project.variant = variant
    return project, diags


def _unified_docs(
    root: Path, variant: Variant, requests: list[Path], **options: Any
) -> tuple[ProjectDocs, list[Diagnostic]]:
    """A unified project: its file checked, then its transpiled files as the run reads them."""
    from rslp.formats.unified import materialize

    source = variant.model_config
    doc, diags = load_document(source)
    if diags:
        return ProjectDocs(root=root, docs={}, requests=[], found=list(diags)), diags
    mat, probs = materialize(source)
    for p in probs:
        if p.file is not None and p.file != source:
            diags.append(Diagnostic(p.file, p.message, hint=p.hint, rule="unified"))
        else:
            diags.append(
                doc.diag(p.message, p.key, hint=p.hint, rule="unified", severity=p.severity)
            )
    if mat is None:
        project = ProjectDocs(root=root, docs={}, requests=[], found=list(diags), variant=variant)
        return project, diags
    paths = {
        "dataset.json": mat.dataset_json,
        "model.yaml": mat.model_yaml,
        **{r: mat.run_yaml for r in SECTION_ROLES},
    }
    project, more = _load_variant(root, variant, paths, requests, **options)
    project.source = source
    project.transpiled = mat.root
    project.docs[formats.UNIFIED_YAML] = doc
    diags += more
    if not requests:
        diags.append(_no_request(root))
    project.found = list(diags)
    return project, diags


def _no_request(root: Path) -> Diagnostic:
    """The warning for a directory without a request (a run brings its own)."""
    return Diagnostic(
        root / "prediction",
        f"no request here (no {formats.REFERENCE_REQUEST}, no *.geojson in prediction/ "
        "or prediction_requests/): the request rules were not run",
        hint="give the request with the run: esrunner run DIR --request FILE",
        rule="files",
        severity="warning",
    )


def _has_finetune(root: Path, run: Path) -> bool:
    """Whether a project directory has a fine-tune config (file, or window_prep of ``run``)."""
    if (root / formats.FINETUNE_ROLE).is_file():
        return True
    try:
        data = yaml.safe_load(run.read_text()) if run.is_file() else None
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return formats.has_section(data, formats.FINETUNE_ROLE)


def _as_collection(doc: Document) -> tuple[Document, list[Diagnostic]]:
    """A request as the FeatureCollection the runner reads (:func:`rslp.request.unwrap`).

    A platform request body gets a notice; its keys are still named as written.
    """
    from rslp.request import PLATFORM_KEY, unwrap

    data, prefix = unwrap(doc.data)
    notes = []
    if prefix:
        ignored = sorted(k for k in doc.data if k != PLATFORM_KEY)
        notes.append(
            doc.diag(
                f"a platform request body: its {PLATFORM_KEY!r} FeatureCollection is the request"
                + (f"; {', '.join(ignored)} ignored" if ignored else ""),
                rule="request",
                severity="notice",
            )
        )
        doc.prefix = (PLATFORM_KEY,)
        inner = doc.data[PLATFORM_KEY]
    else:
        inner = doc.data
    if data is not inner:  # a single Feature: lines under features[0]
        doc.lines = doc.lines | {
            (*doc.prefix, "features", 0, *k[len(doc.prefix) :]): v
            for k, v in doc.lines.items()
            if k[: len(doc.prefix)] == doc.prefix
        }
        doc.lines.setdefault((*doc.prefix, "features"), doc.lines.get(doc.prefix, 1))
    doc.data = data
    return doc, notes
