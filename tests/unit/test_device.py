"""Inference devices on torch's CPU build, with CUDA simulated where a test needs a GPU:
device choice, one GPU per worker process, the batch-size override, out-of-memory errors."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch

from rslp.errors import ProjectError
from rslp.runner import device
from rslp.runner.device import InferenceSettings, accelerator_for, worker_gpus
from tests.conftest import DEMO

MODEL = DEMO / "model.yaml"


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch):
    """Make torch report ``n`` GPUs (its CPU build reports none)."""

    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return have


def test_auto_follows_model_yaml_and_the_machine(gpus) -> None:
    gpus(0)
    assert accelerator_for({}, MODEL) == "auto"  # Lightning picks the CPU
    assert accelerator_for({"accelerator": "cpu"}, MODEL) == "cpu"
    gpus(1)
    assert accelerator_for({"accelerator": "gpu"}, MODEL) == "gpu"
    assert accelerator_for({}, MODEL, "cuda") == "gpu"


def test_a_gpu_asked_for_on_a_machine_without_one_names_model_yaml(gpus) -> None:
    gpus(0)
    with pytest.raises(ProjectError) as e:
        accelerator_for({"accelerator": "gpu"}, MODEL)
    assert e.value.path == MODEL and e.value.key == "trainer.accelerator"
    assert "torch sees no GPU here" in str(e.value) and "--device cpu" in str(e.value)
    with pytest.raises(ProjectError) as e:
        accelerator_for({}, MODEL, "cuda")
    assert "--device cuda, but torch sees no GPU here" in str(e.value)


def test_cpu_fallback_only_when_asked_with_one_warning(
    gpus, caplog: pytest.LogCaptureFixture
) -> None:
    gpus(0)
    device._WARNED.clear()
    with caplog.at_level(logging.WARNING, logger="rslp.runner.device"):
        for _ in range(3):  # every partition asks; the person is told once
            assert accelerator_for({"accelerator": "cuda"}, MODEL, "cpu") == "cpu"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1 and "running on the CPU as asked (--device cpu)" in warnings[0].message
    )


def test_one_gpu_per_worker_process_never_two_on_one(gpus) -> None:
    assert worker_gpus(2, 2, "auto") == ["0", "1"]
    assert worker_gpus(1, 4, "auto") == ["0"]
    assert worker_gpus(3, 0, "auto") == [None, None, None]  # no GPU: the CPU's cores
    assert worker_gpus(3, 2, "cpu") == [None, None, None]
    with pytest.raises(ProjectError) as e:
        worker_gpus(3, 2, "auto")
    assert "3 worker processes on 2 GPU(s)" in str(e.value) and "--workers 2" in str(e.value)


def _visible() -> tuple[int, str]:
    time.sleep(0.3)  # keep this process busy so the next task goes to the other one
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_each_local_worker_process_sees_its_own_gpu(tmp_path: Path) -> None:
    from rslp.runner.executors.local import ProcessExecutor

    executor = ProcessExecutor(2, str(tmp_path), gpus=["0", "1"])
    pool = executor._new_pool()
    try:
        seen = dict(f.result(timeout=120) for f in [pool.submit(_visible) for _ in range(6)])
    finally:
        pool.shutdown(wait=True)
    assert sorted(seen.values()) == ["0", "1"], seen  # two processes, one GPU each


def test_batch_size_override_reaches_the_predict_config(tmp_path: Path) -> None:
    from rslp.project import ProjectFiles
    from rslp.runner.context import RunContext
    from rslp.runner.inference import predict_config
    from rslp.runner.scratch import Scratch

    files = ProjectFiles.from_dir(DEMO)
    plain = RunContext(files=files, scratch=Scratch.open(tmp_path / "a"))
    assert device.batch_size(predict_config(plain)) == 8  # model.yaml's
    ctx = RunContext(
        files=files, scratch=Scratch.open(tmp_path / "b"), inference=InferenceSettings("cpu", 3)
    )
    cfg = predict_config(ctx)
    assert device.batch_size(cfg) == 3 and cfg["trainer"]["accelerator"] == "cpu"


def test_cuda_out_of_memory_is_one_error_naming_the_batch_size(tmp_path: Path) -> None:
    """A real predictor of the demo whose predict loop hits CUDA's out-of-memory error."""
    from rslp.project import ProjectFiles
    from rslp.runner.context import RunContext
    from rslp.runner.inference import Predictor
    from rslp.runner.scratch import Scratch

    ctx = RunContext(
        files=ProjectFiles.from_dir(DEMO),
        scratch=Scratch.open(tmp_path),
        inference=InferenceSettings(batch_size=16),
    )
    predictor = Predictor(ctx)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError as e:
            raise RuntimeError("predict failed") from e  # as Lightning may wrap it

    predictor.trainer.predict = out_of_memory  # type: ignore[method-assign]
    with pytest.raises(ProjectError) as e:
        predictor.predict("p", ["w"], None)
    err = e.value
    assert err.path == MODEL and err.key == device.BATCH_KEY
    assert "CUDA ran out of GPU memory predicting batches of 16 (from --batch-size)" in str(err)
    assert "--batch-size 8" in str(err) and "Traceback" not in str(err)
    assert device.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20 MiB"))
    assert not device.is_out_of_memory(RuntimeError("shape mismatch"))
