"""Project loading, plugin resolution and the seed's sample project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rslp.common.partitioners import FixedWindowPartitioner, PartitionInterface
from rslp.common.postprocessing import NoopRaster, PostprocessInterface
from rslp.errors import ProjectError
from rslp.espredict_runner import EsPredictRunner
from rslp.plugins import instantiate
from rslp.project import ProjectFiles
from tests.conftest import SEED_SAMPLE, assert_scratch_untouched


def test_seed_class_paths_resolve_to_ours(tmp_path: Path) -> None:
    p = instantiate(
        "esrun.tools.partitioners.fixed_window_partitioner.FixedWindowPartitioner",
        {"window_size": 64},
        PartitionInterface,
        source=tmp_path / "x.yaml",
        key="strategy_small",
    )
    assert isinstance(p, FixedWindowPartitioner) and p.window_size == 64
    pp = instantiate(
        "esrun.tools.postprocessors.noop_raster.NoopRaster",
        None,
        PostprocessInterface,
        source=tmp_path / "x.yaml",
        key="strategy_small",
    )
    assert isinstance(pp, NoopRaster)
    for seed_path, ours in [
        ("esrun.tools.postprocessors.combine_geotiff.CombineGeotiff", "CombineGeotiff"),
        ("esrun.tools.postprocessors.combine_geojson.CombineGeojson", "CombineGeojson"),
    ]:
        obj = instantiate(seed_path, {}, PostprocessInterface, source=tmp_path / "x.yaml", key="k")
        assert type(obj).__name__ == ours


def test_bad_class_paths_name_file_and_key(tmp_path: Path) -> None:
    src = tmp_path / "partition_strategies.yaml"
    with pytest.raises(ProjectError) as e:
        instantiate("nope.module.Thing", {}, PartitionInterface, source=src, key="strategy_large")
    assert "strategy_large.class_path" in str(e.value) and str(src) in str(e.value)
    with pytest.raises(ProjectError, match="window_sz"):
        instantiate(
            "rslp.common.partitioners.fixed_window.FixedWindowPartitioner",
            {"window_sz": 3},
            PartitionInterface,
            source=src,
            key="strategy_small",
        )
    with pytest.raises(ProjectError, match="is not a PartitionInterface"):
        instantiate("pathlib.Path", {}, PartitionInterface, source=src, key="strategy_small")


def test_missing_project_file_is_named(demo_copy: Path) -> None:
    (demo_copy / "postprocessing_strategies.yaml").unlink()
    with pytest.raises(ProjectError, match="postprocessing_strategies.yaml: required project file"):
        ProjectFiles.from_dir(demo_copy)


def test_bad_strategy_leaves_no_plan(demo_copy: Path, tmp_path: Path) -> None:
    cfg = demo_copy / "partition_strategies.yaml"
    cfg.write_text(
        cfg.read_text().replace("rslp.common.partitioners.grid.GridPartitioner", "rslp.nope.Grid")
    )
    runner = EsPredictRunner.from_project(demo_copy, tmp_path / "scratch")
    with pytest.raises(ProjectError) as e:
        runner.partition()
    assert "strategy_small.class_path" in str(e.value)
    assert not (tmp_path / "scratch" / "plan").exists()


def test_feature_without_times_is_refused(demo_copy: Path, tmp_path: Path) -> None:
    req = demo_copy / "prediction" / "test-request1.geojson"
    req.write_text(req.read_text().replace('"es_end_time"', '"end"', 1))
    runner = EsPredictRunner.from_project(demo_copy, tmp_path / "scratch")
    with pytest.raises(ProjectError) as e:
        runner.partition()
    assert "features[0].properties" in str(e.value) and "es_end_time" in str(e.value)
    assert not (tmp_path / "scratch" / "plan").exists()


def test_seed_sample_fails_preflight_naming_its_known_problems(tmp_path: Path) -> None:
    from rslp.checks.preflight import PreflightError
    from rslp.runner.partition import run_partition

    project = tmp_path / "sample"
    shutil.copytree(SEED_SAMPLE, project)
    scratch = tmp_path / "scratch"
    runner = EsPredictRunner.from_project(project, scratch)
    with pytest.raises(PreflightError) as e:
        runner.partition()
    text = str(e.value)
    assert "planetary_computer" in text and "layers.sentinel2_l2a_mo01.data_source.name" in text
    assert "rslp.helios.model.Helios" in text and "encoder[0].class_path" in text
    assert "checkpoint.ckpt: checkpoint file is empty" in text
    assert_scratch_untouched(scratch)  # nothing written before the checks pass
    # Its strategies themselves load and partition (one partition per feature).
    assert len(run_partition(runner.ctx)) == 2
    assert [
        type(runner.ctx.postprocessor(k)).__name__
        for k in ("strategy_small", "strategy_medium", "strategy_large")
    ] == ["NoopRaster"] * 3
