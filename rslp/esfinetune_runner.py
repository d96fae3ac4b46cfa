"""EsFineTuneRunner: fine-tune a project's model on new labels (the seed's next runner).

In the style of :class:`~rslp.espredict_runner.EsPredictRunner`: built from config paths
and a scratch path, one method per step, each runnable alone in a fresh process (all state
is in ``SCRATCH/finetune/``)::

    runner = EsFineTuneRunner.from_project("data/demo-finetune", "scratch/")
    runner.prepare_windows()   # annotations -> labeled windows and splits
    runner.build_dataset()     # materialize their imagery
    runner.fit()               # rslearn fit from the project's checkpoint -> checkpoint.ckpt
    runner.evaluate()          # before/after on the validation split -> metrics.json, report.png
    runner.export("data/demo-finetune-v2")   # a new project version with the new weights
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rslp.bucket import Bucket, is_url
from rslp.finetune.context import FINETUNE_DIR, FinetuneContext, FinetuneFiles
from rslp.finetune.steps import build_dataset, evaluate, fit, prepare_windows
from rslp.project import default_checkpoint
from rslp.rasterenv import raster_env
from rslp.runner.scratch import Scratch, node_dir

T = TypeVar("T")
LEASE_OBJECT = "finetune.lock"


def finetune_scratch(location: str | Path) -> tuple[Scratch, Bucket | None]:
    """``finetune/`` of a scratch directory or bucket URL, and the bucket (None on disk).

    Raises:
        BucketError: an unsupported URL (nothing is contacted yet).
    """
    if is_url(location):
        bucket = Bucket(str(location))
        remote = bucket.child(FINETUNE_DIR)
        return Scratch(node_dir(remote.url), remote), bucket
    return Scratch(Path(location) / FINETUNE_DIR), None


class EsFineTuneRunner:
    """Fine-tunes a project's model; every step reads and writes ``SCRATCH/finetune/``.

    With a scratch in a bucket (``s3://bucket/prefix``) the steps work in a node-local copy
    of ``finetune/`` (:func:`rslp.runner.scratch.node_dir`): each step starts from the
    bucket's copy unless this node already holds it, and puts the tree back (changed files,
    then its marker) when it succeeds, under a lease (``finetune.lock``) so that two
    fine-tunes never share the scratch. A step interrupted on one node resumes there
    (the fit from its last epoch); another node starts it from the last step that ended.

    Args:
        model_yaml: the rslearn model config.
        dataset_json: the rslearn dataset config (with the label layer).
        finetune_strategies_yaml: ``finetune_strategies.yaml`` (or an ``olmoearth_run.yaml``
            with ``window_prep``).
        annotation_task_features: the annotation tasks GeoJSON.
        annotation_features: the annotations GeoJSON.
        scratch_path: the scratch directory (``finetune/`` is made in it), or a bucket URL.
        checkpoint_path: the weights to start from (default: ``checkpoint.ckpt`` beside
            model.yaml, when present).
        max_epochs: overrides the fine-tune config's ``trainer.max_epochs``.
    """

    def __init__(
        self,
        model_yaml: str | Path,
        dataset_json: str | Path,
        finetune_strategies_yaml: str | Path,
        annotation_task_features: str | Path,
        annotation_features: str | Path,
        scratch_path: str | Path = "scratch/",
        checkpoint_path: str | Path | None = None,
        max_epochs: int | None = None,
    ) -> None:
        model = Path(model_yaml).resolve()
        ckpt = default_checkpoint(model, checkpoint_path)
        files = FinetuneFiles(
            model_yaml=model,
            dataset_json=Path(dataset_json).resolve(),
            finetune_yaml=Path(finetune_strategies_yaml).resolve(),
            tasks=Path(annotation_task_features).resolve(),
            annotations=Path(annotation_features).resolve(),
            checkpoint=ckpt,
        )
        self.scratch, self.bucket = finetune_scratch(scratch_path)
        self.ctx = FinetuneContext(files=files, scratch=self.scratch, max_epochs=max_epochs)
        self.checked = False

    @classmethod
    def from_project(
        cls,
        project_dir: str | Path,
        scratch_path: str | Path,
        max_epochs: int | None = None,
        run_config: str | Path | None = None,
        model_config: str | Path | None = None,
    ) -> EsFineTuneRunner:
        """A runner from a project directory's standard file names (either format).

        ``run_config``/``model_config`` choose a model variant (:mod:`rslp.variants`).
        """
        from rslp.variants import choose

        d = Path(project_dir)
        f = FinetuneFiles.from_dir(d, choose(d, run_config, model_config))
        return cls(
            f.model_yaml,
            f.dataset_json,
            f.finetune_yaml,
            f.tasks,
            f.annotations,
            scratch_path=scratch_path,
            checkpoint_path=f.checkpoint,
            max_epochs=max_epochs,
        )

    def preflight(self) -> None:
        """Check the fine-tune's files before anything is written (once per runner).

        Raises:
            PreflightError: every error found, each naming file and key path.
        """
        from rslp.checks.preflight import preflight_finetune

        if not self.checked:
            preflight_finetune(self.ctx.files)
            self.checked = True

    def _step(self, step: Callable[[FinetuneContext], T]) -> T:
        """Run one step on the scratch; in a bucket, from and back to the bucket's copy."""
        self.preflight()
        if self.bucket is None:
            with raster_env():
                return step(self.ctx)
        from rslp.runner.lock import LeaseLock

        self.bucket.check_writable()  # a bucket refusing writes: now, before any window
        lease = LeaseLock(self.bucket, name=LEASE_OBJECT)
        with lease:
            self._fetch()
            with raster_env():
                out = step(self.ctx)
            lease.check()  # a lost lease: another fine-tune owns the scratch now
            self.scratch.publish(self.scratch.root)
        return out

    def _fetch(self) -> None:
        """Bring the bucket's ``finetune/`` here unless this node holds it already."""
        self.scratch.fetch(self.scratch.root)

    def where(self, path: Path) -> str:
        """Where users find a file of the fine-tune: its URL in the bucket, or its path."""
        return self.scratch.where(path)

    def prepare_windows(self) -> dict[str, Any]:
        """Annotations -> labeled windows with their split; returns ``windows.json``."""
        return self._step(prepare_windows)

    def build_dataset(self) -> int:
        """Materialize the labeled windows' imagery; returns the number of windows."""
        return self._step(build_dataset)

    def fit(self) -> Path:
        """Fine-tune (resuming after an interruption); returns ``finetune/checkpoint.ckpt``.

        In a bucket the path is the node-local copy's; :meth:`where` gives its URL.
        """
        return self._step(fit)

    def evaluate(self) -> dict[str, Any]:
        """Score before and after on the validation split; returns ``metrics.json``."""
        return self._step(evaluate)

    def run(self) -> dict[str, Any]:
        """Every step in order; returns the metrics."""
        self.prepare_windows()
        self.build_dataset()
        self.fit()
        return self.evaluate()

    def export(self, out_dir: str | Path) -> Path:
        """Write the fine-tuned model as a new project version at ``out_dir`` (see export)."""
        from rslp.finetune.export import export

        if self.bucket is not None:
            self._fetch()
        return export(self.ctx, Path(out_dir))
