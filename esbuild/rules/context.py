"""What every rule reads: the project's parsed documents and the validation options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from esbuild.diagnostics import Diagnostic
from esbuild.documents import Document


@dataclass
class ProjectDocs:
    """A project directory, parsed.

    Attributes:
        root: the project directory.
        docs: file name (``dataset.json``, ``model.yaml``, ...) -> parsed document.
        requests: the prediction request documents.
        checkpoint: ``checkpoint.ckpt`` when present.
        requirements: ``requirements.txt`` when present.
        deep: also load the checkpoint into the model.
        allow_sources: allow requirement options that change where packages come from.
        found: diagnostics found so far (rules may look, e.g. to avoid repeating one).
        model_cli: the parsed rslearn LightningCLI of model.yaml, once a rule made it.
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

    def data(self, name: str) -> object:
        """The parsed content of a document, or None when missing or broken."""
        doc = self.docs.get(name)
        return None if doc is None else doc.data
