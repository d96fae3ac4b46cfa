"""The realistic project as its authors would write it, end to end on a CPU.

``data/olmoearth-cropland``: the OlmoEarth Nano encoder (olmoearth-pretrain-minimal) built
from a local config bundle, 12-band imagery with three timesteps, patch-wise inference with
overlap, the reference default ``autocast_dtype: bfloat16``, a legend in
``olmoearth_run.yaml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from esbuild.validate import validate_project
from tests.conftest import REPO

pytestmark = pytest.mark.e2e
PROJECT = REPO / "data" / "olmoearth-cropland"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    scratch = tmp_path_factory.mktemp("cropland")
    out = subprocess.run(
        [sys.executable, "-m", "rslp.cli", "run", str(PROJECT), "--scratch", str(scratch)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=900,
    )
    return out, scratch


def test_it_validates_without_findings() -> None:
    found = validate_project(PROJECT, deep=True)
    assert [d.text() for d in found if d.severity in ("error", "warning")] == []


def test_default_bfloat16_autocast_runs_on_cpu_with_one_warning(run) -> None:
    out, _ = run
    assert out.returncode == 0, out.stderr[-3000:]
    warnings = [ln for ln in out.stderr.splitlines() if "autocast" in ln]
    assert len(warnings) == 1, warnings
    assert "model.yaml" in warnings[0] and "autocast_dtype" in warnings[0]
    assert "windows: 4 ready, 0 rejected of 4 planned" in out.stderr


def test_the_class_map_is_an_integer_cog_with_the_legend_colours(run) -> None:
    out, scratch = run
    assert out.returncode == 0, out.stderr[-3000:]
    with rasterio.open(scratch / "results" / "result.tif") as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        cmap = src.colormap(1)
        arr = src.read(1)
    assert cmap[1][:3] == (136, 33, 233) and cmap[2][:3] == (124, 67, 18)
    assert set(np.unique(arr)) <= {1, 2, 255}
    with rasterio.open(PROJECT / "truth" / "cropland.tif") as truth:
        expected = truth.read(1)
    assert arr.shape == expected.shape
    valid = arr != 255
    assert valid.mean() > 0.9
    assert (arr[valid] == expected[valid]).mean() > 0.9  # the checkpoint learned the season
