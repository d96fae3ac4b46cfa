"""Where inference runs: the device, the batch size, and one GPU per worker process.

A person running a model expects: the GPU when there is one (model.yaml's
``trainer.accelerator``, ``auto`` by default); a model that asks for a GPU on a machine
without one is refused, naming model.yaml and the key, unless ``--device cpu`` asks for the
CPU (then one warning says so); ``--batch-size`` overrides ``data.init_args.batch_size``;
CUDA running out of memory is one error naming that key and a smaller size to try, not a
traceback; and ``--workers N`` on a machine with GPUs gives each worker process its own GPU
(``CUDA_VISIBLE_DEVICES``), refusing more workers than GPUs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rslp.errors import ProjectError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cuda", "cpu")
GPU_ACCELERATORS = frozenset({"gpu", "cuda"})
BATCH_KEY = "data.init_args.batch_size"


@dataclass(frozen=True)
class InferenceSettings:
    """What the command line says about inference (carried to every worker with its jobs).

    Attributes:
        device: ``auto`` (model.yaml's accelerator; the GPU when there is one), ``cuda``
            (a GPU, or an error) or ``cpu`` (the CPU, even where model.yaml asks for a GPU).
        batch_size: overrides model.yaml's ``data.init_args.batch_size`` (None: keep it).
    """

    device: str = "auto"
    batch_size: int | None = None


def cuda_devices() -> int:
    """How many GPUs torch sees here (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def accelerator_for(trainer: dict[str, Any], model_yaml: Path, device: str = "auto") -> str:
    """The Lightning accelerator a predict runs on: ``cpu``, ``gpu`` or ``auto``.

    Raises:
        ProjectError: model.yaml (or ``--device cuda``) asks for a GPU and torch sees none.
    """
    asked = str(trainer.get("accelerator", "auto")).lower()
    if device == "cpu":
        if asked in GPU_ACCELERATORS:
            _warn_once(
                f"{model_yaml}: trainer.accelerator is {asked!r}; running on the CPU as asked "
                "(--device cpu): expect it to be much slower"
            )
        return "cpu"
    if device == "cuda" or asked in GPU_ACCELERATORS:  # only then is torch asked (a second)
        if cuda_devices() == 0:
            why = "--device cuda" if device == "cuda" else f"trainer.accelerator is {asked!r}"
            raise ProjectError(
                model_yaml,
                f"{why}, but torch sees no GPU here",
                "trainer.accelerator" if device != "cuda" else None,
                hint="run where a GPU is, or give --device cpu to run on the CPU (slow)",
            )
        return "gpu"
    return asked


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning("%s", message)


def apply(cfg: dict[str, Any], model_yaml: Path, settings: InferenceSettings) -> None:
    """Set the predict config's accelerator and batch size from ``settings`` (in place)."""
    trainer = cfg.setdefault("trainer", {})
    trainer["accelerator"] = accelerator_for(trainer, model_yaml, settings.device)
    if settings.batch_size is not None:
        data = cfg.get("data")
        if isinstance(data, dict):
            data.setdefault("init_args", {})["batch_size"] = settings.batch_size


def batch_size(cfg: dict[str, Any]) -> int | None:
    """The predict batch size a config uses (None when it does not say)."""
    data = cfg.get("data")
    args = data.get("init_args") if isinstance(data, dict) else None
    value = args.get("batch_size") if isinstance(args, dict) else None
    return value if isinstance(value, int) else None


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an error (or one it was raised from) is CUDA running out of memory."""
    import torch

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, torch.OutOfMemoryError) or "CUDA out of memory" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def out_of_memory(model_yaml: Path, size: int | None, given: bool) -> ProjectError:
    """The error for CUDA running out of memory at a batch size."""
    smaller = max(1, (size or 2) // 2)
    where = "--batch-size" if given else f"{model_yaml.name}'s {BATCH_KEY}"
    return ProjectError(
        model_yaml,
        f"CUDA ran out of GPU memory predicting batches of {size if size else 'its default'} "
        f"(from {where})",
        BATCH_KEY,
        hint=f"predict smaller batches: --batch-size {smaller} (or lower {BATCH_KEY} in "
        f"{model_yaml.name}); other processes on the GPU also take its memory",
    )


def worker_gpus(workers: int, gpus: int, accelerator: str) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` of each of ``workers`` local worker processes.

    One GPU each where there are GPUs and the model may use them; None (the environment as
    it is) on a CPU.

    Raises:
        ProjectError: more workers than GPUs: two processes would share a GPU's memory.
    """
    if gpus == 0 or accelerator == "cpu":
        return [None] * workers
    if workers > gpus:
        raise ProjectError(
            Path("--workers"),
            f"{workers} worker processes on {gpus} GPU(s) would put two models on one GPU",
            hint=f"use --workers {gpus} (one process per GPU), or --device cpu",
        )
    return [str(i) for i in range(workers)]
