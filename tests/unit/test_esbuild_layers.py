"""The base lock staged as the Dockerfile's layers: every pin in exactly one, hashes kept."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from esbuild import image
from esbuild.lock import entries, read_header
from tests.conftest import REPO


def test_the_real_base_lock_splits_into_cuda_torch_and_the_rest() -> None:
    body = read_header((REPO / "requirements" / "base.lock").read_text())[2]
    whole, unsafe = entries(body)
    parts = {p: entries(b) for p, b in image.base_bodies(REPO).items()}
    assert list(parts) == list(image.BASE_PARTS)
    names = [n for found, _ in parts.values() for n in found]
    assert sorted(names) == sorted(whole)  # every pin once, none lost
    for found, _ in parts.values():
        for name, entry in found.items():
            assert entry == whole[name] and "--hash=sha256:" in entry  # hashes kept
    cuda, torch, rest = (set(parts[p][0]) for p in image.BASE_PARTS)
    assert {"nvidia-cudnn-cu13", "nvidia-cublas", "cuda-bindings"} <= cuda
    assert torch == {"torch", "torchvision", "triton"}
    assert {"rslearn", "ray", "numpy", "lightning"} <= rest
    assert parts["base"][1] == unsafe  # setuptools and the like stay in the unsafe section


def test_stage_locks_writes_one_directory_per_dockerfile_layer(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    shutil.copy(REPO / "requirements" / "base.lock", tmp_path / "requirements" / "base.lock")
    staged = image.stage_locks(tmp_path, REPO / "data" / "olmoearth-cropland" / "requirements.lock")
    assert [p.parent.name for p in staged] == list(image.PARTS)
    assert all(p == tmp_path / ".esbuild" / p.parent.name / "requirements.lock" for p in staged)
    texts = {p.parent.name: p.read_text() for p in staged}
    assert "\ntorch==" in "\n" + texts["torch"] and "torch==" not in texts["base"]
    assert "\nnvidia-cublas==" in "\n" + texts["cuda"]
    assert texts["project"] and all(n not in texts["project"] for n in ("torch==", "rslearn=="))
    # The Dockerfile bind-mounts exactly these directories, in this order.
    mounts = re.findall(r"source=\.esbuild/(\w+),", (REPO / "Dockerfile").read_text())
    assert mounts == list(image.PARTS)
