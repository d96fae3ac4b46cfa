"""Bad input stops with an error naming the file and key, at the step that needs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rslp.checks.preflight import PreflightError
from rslp.errors import ProjectError
from rslp.espredict_runner import EsPredictRunner
from tests.conftest import assert_scratch_untouched

pytestmark = pytest.mark.e2e


def test_band_names_that_localfiles_does_not_produce_fail_before_any_window(
    demo_copy: Path, tmp_path: Path
) -> None:
    cfg_path = demo_copy / "dataset.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["layers"]["image"]["band_sets"][0]["bands"] = ["blue", "green", "red", "nir"]
    cfg_path.write_text(json.dumps(cfg))
    runner = EsPredictRunner.from_project(demo_copy, tmp_path / "scratch")
    with pytest.raises(PreflightError) as e:
        runner.partition()
    assert "layers.image.band_sets[0].bands" in str(e.value) and "B1..B4" in str(e.value)
    assert_scratch_untouched(tmp_path / "scratch")


def test_empty_checkpoint_is_refused_before_any_step(demo_copy: Path, tmp_path: Path) -> None:
    (demo_copy / "checkpoint.ckpt").write_bytes(b"")
    runner = EsPredictRunner.from_project(demo_copy, tmp_path / "scratch")
    with pytest.raises(ProjectError, match="checkpoint file is empty"):
        runner.partition()
    assert_scratch_untouched(tmp_path / "scratch")


def test_custom_partitioner_loads_from_the_pythonpath(
    demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "plugins"
    pkg.mkdir()
    (pkg / "my_partitioners.py").write_text(
        "from rslp.common.partitioners.interface import PartitionInterface, Partition\n"
        "from rslp.common.partitioners.fixed_window import FixedWindowPartitioner\n"
        "class FirstFeatureOnly(PartitionInterface):\n"
        "    def __init__(self, window_size=64):\n"
        "        self.window_size = window_size\n"
        "    def partition_request(self, features):\n"
        "        return [Partition(id=features[0].id, features=features[:1])]\n"
        "    def partition_windows(self, partition, projection):\n"
        "        small = FixedWindowPartitioner(self.window_size)\n"
        "        return small.partition_windows(partition, projection)\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("my_partitioners", None)
    cfg = demo_copy / "partition_strategies.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "rslp.common.partitioners.fixed_window.FixedWindowPartitioner",
            "my_partitioners.FirstFeatureOnly",
        )
    )
    runner = EsPredictRunner.from_project(demo_copy, tmp_path / "scratch")
    assert runner.partition() == ["north-lakes"]
