"""Rules on a project's fine-tune files: the config, the annotations, the windows they make.

They run on a project with ``finetune_strategies.yaml`` (or ``window_prep`` in
``olmoearth_run.yaml``) in ``esbuild validate``/``esrunner check`` and before every step
of :class:`~rslp.esfinetune_runner.EsFineTuneRunner`; a prediction run does not need them.
They do what ``prepare_windows`` does, without writing: every strategy constructed, every
annotation read (inside its task, a class of the model), the windows made and split, and
an empty train or validation split reported.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from rslp import formats
from rslp.checks.diagnostics import Diagnostic
from rslp.checks.project import ProjectDocs
from rslp.errors import ProjectError

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def key_path(key: str | None) -> tuple[str | int, ...]:
    """``features[3].properties.oe_labels`` -> ``("features", 3, "properties", "oe_labels")``."""
    if not key:
        return ()
    return tuple(int(m.group(2)) if m.group(2) else m.group(1) for m in _PART.finditer(key))


def diagnostic(project: ProjectDocs, e: ProjectError, rule: str) -> Diagnostic:
    """A ProjectError as a diagnostic, with the line of its key when the file is parsed."""
    for doc in project.docs.values():
        if doc.path == e.path and doc.role is None:
            return Diagnostic(e.path, e.message, e.key, doc.line(key_path(e.key)), e.hint, rule)
    return Diagnostic(e.path, e.message, e.key, None, e.hint, rule)


def check_finetune(project: ProjectDocs) -> list[Diagnostic]:
    """The fine-tune config and annotations make labeled windows in every needed split."""
    from rslp.finetune.context import FinetuneContext, FinetuneFiles
    from rslp.finetune.steps import plan_windows
    from rslp.runner.scratch import Scratch

    if formats.FINETUNE_ROLE not in project.docs:
        return []
    involved = [
        project.docs.get(n)
        for n in (formats.FINETUNE_ROLE, "dataset.json", "model.yaml", *ANNOTATION_ROLES)
    ]
    if any(d is None or project.has_errors(d) for d in involved):
        return []  # missing files and schema errors are reported already
    try:
        files = project.finetune or FinetuneFiles.from_dir(project.root)
        with tempfile.TemporaryDirectory() as tmp:
            ctx = FinetuneContext(files=files, scratch=Scratch(Path(tmp)))
            plan_windows(ctx)
    except ProjectError as e:
        return [diagnostic(project, e, "finetune")]
    except (ValueError, TypeError) as e:  # a strategy rejecting what it was given
        doc = project.docs[formats.FINETUNE_ROLE]
        return [doc.diag(f"{type(e).__name__}: {e}", (), rule="finetune")]
    return []


ANNOTATION_ROLES = ("annotation_task_features.geojson", "annotation_features.geojson")
