"""Fine-tune preparation: annotations, samplers, preparers, splitters and their checks."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import shapely.geometry as sg
import yaml

from rslp.checks import check_project
from rslp.checks.diagnostics import Diagnostic
from rslp.convert import convert
from rslp.errors import ProjectError
from rslp.finetune.annotations import Annotation, AnnotationTask, load_tasks
from rslp.finetune.context import FinetuneContext, FinetuneFiles
from rslp.finetune.preparers import (
    LabeledWindow,
    PointToPixelWindowPreparer,
    PointToRasterWindowPreparer,
    PolygonToRasterWindowPreparer,
)
from rslp.finetune.samplers import ChooseNSampler
from rslp.finetune.splitters import RandomDataSplitter, SpatialDataSplitter
from rslp.finetune.steps import plan_windows
from rslp.runner.scratch import Scratch
from tests.conftest import REPO

DEMO = REPO / "data" / "demo-finetune"
T = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 30, tzinfo=UTC))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dst = tmp_path / "ft"
    shutil.copytree(DEMO, dst, ignore=shutil.ignore_patterns("scratch"))
    return dst


def errors(diags: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.severity == "error"]


def test_demo_validates_and_plans_windows(project: Path, tmp_path: Path) -> None:
    assert errors(check_project(project)) == []
    ctx = FinetuneContext(FinetuneFiles.from_dir(project), Scratch(tmp_path / "s"))
    windows, splits, counts = plan_windows(ctx)
    assert len(windows) == 360 and counts["train"] > counts["val"] > 50
    assert not (tmp_path / "s" / "dataset").exists()  # planning writes nothing


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    data = (
        yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
    )
    fn(data)
    text = (
        yaml.safe_dump(data, sort_keys=False)
        if path.suffix == ".yaml"
        else json.dumps(data, indent=1)
    )
    path.write_text(text)


@pytest.mark.parametrize(
    ("name", "edit", "file", "key", "words"),
    [
        (
            "proportions",
            lambda p: _edit(
                p / "finetune_strategies.yaml",
                lambda d: d["data_splitter"]["init_args"].update(val_prop=0.5),
            ),
            "finetune_strategies.yaml",
            "data_splitter.init_args",
            "must be 1, got 1.2",
        ),
        (
            "empty-val",
            lambda p: _edit(
                p / "finetune_strategies.yaml",
                lambda d: d["data_splitter"]["init_args"].update(
                    train_prop=1.0, val_prop=0.0, grid_size=64
                ),
            ),
            "finetune_strategies.yaml",
            "data_splitter.init_args",
            "the val split is empty",
        ),
        (
            "unknown-class",
            lambda p: _edit(
                p / "annotations" / "annotation_features.geojson",
                lambda d: d["features"][5]["properties"]["oe_labels"].update(label=7),
            ),
            "annotation_features.geojson",
            "features[5].properties.oe_labels",
            "label 7 is not a class of the model",
        ),
        (
            "outside-task",
            lambda p: _edit(
                p / "annotations" / "annotation_features.geojson",
                lambda d: d["features"][3]["geometry"].update(coordinates=[7.0, 45.0]),
            ),
            "annotation_features.geojson",
            "features[3].geometry",
            "outside its task",
        ),
        (
            "unknown-task",
            lambda p: _edit(
                p / "annotations" / "annotation_features.geojson",
                lambda d: d["features"][0]["properties"].update(oe_annotations_task_id="nope"),
            ),
            "annotation_features.geojson",
            "features[0].properties.oe_annotations_task_id",
            "'nope' is not a task",
        ),
        (
            "schema",
            lambda p: _edit(p / "finetune_strategies.yaml", lambda d: d.update(label_layr="label")),
            "finetune_strategies.yaml",
            "",
            "label_layr",
        ),
    ],
)
def test_broken_finetune_files_are_reported_with_file_key_and_line(
    project: Path, name: str, edit, file: str, key: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    edit(project)
    found = errors(check_project(project))
    assert found, name
    d = found[0]
    assert d.file.name == file, d.text()
    assert (d.key or "") == key, d.text()
    assert words in d.message, d.text()
    assert d.line is not None or file.endswith(".geojson")


def test_reference_format_window_prep(project: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    convert(project, "reference", ref)
    run = yaml.safe_load((ref / "olmoearth_run.yaml").read_text())
    assert run["window_prep"]["label_layer"] == "label"
    assert not (ref / "finetune_strategies.yaml").exists()
    assert errors(check_project(ref)) == []
    files = FinetuneFiles.from_dir(ref)
    assert files.reference and files.key("data_splitter") == "window_prep.data_splitter"
    windows, _, _ = plan_windows(FinetuneContext(files, Scratch(tmp_path / "s")))
    assert len(windows) == 360
    run["window_prep"]["data_splitter"]["init_args"]["test_prop"] = 0.5
    (ref / "olmoearth_run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    (d,) = errors(check_project(ref))
    assert d.file.name == "olmoearth_run.yaml"
    assert d.key == "window_prep.data_splitter.init_args" and d.line is not None


def task(*annotations: Annotation) -> AnnotationTask:
    return AnnotationTask("t-1", sg.box(8.0, 45.0, 8.1, 45.1), T, list(annotations))


def test_point_to_raster_window() -> None:
    a = Annotation(0, sg.Point(8.05, 45.05), {"label": 1})
    (w,) = PointToRasterWindowPreparer(3, 10.0, "UINT8", 255).prepare(task(a), lambda x: 1)
    assert w.crs == "EPSG:32632" and w.bounds[2] - w.bounds[0] == 7 == w.raster.shape[0]
    assert w.raster[3, 3] == 1 and (w.raster == 255).sum() == 48
    assert w.name == "task_t-1_point_0" and w.time_range == T
    with pytest.raises(ValueError, match="needs points"):
        PointToRasterWindowPreparer(3, 10.0, "uint8", 255).prepare(
            task(Annotation(1, sg.box(8.01, 45.01, 8.02, 45.02), {})), lambda x: 1
        )
    with pytest.raises(ValueError, match="dtype"):
        PointToRasterWindowPreparer(3, 10.0, "complex", 255)


def test_polygon_to_raster_windows() -> None:
    a = Annotation(0, sg.box(8.01, 45.01, 8.03, 45.03), {"label": 1})
    b = Annotation(1, sg.box(8.06, 45.06, 8.08, 45.08), {"label": 0})
    whole = PolygonToRasterWindowPreparer(10.0).prepare(task(a, b), lambda x: x.labels["label"])
    (w,) = whole
    assert set(np.unique(w.raster)) == {0, 1, 255} and sorted(w.values) == [0, 1]
    cells = PolygonToRasterWindowPreparer(10.0, grid_config={"window_size_px": 128}).prepare(
        task(a, b), lambda x: x.labels["label"]
    )
    assert len(cells) > 1 and all(c.raster.shape == (128, 128) for c in cells)
    assert all(set(np.unique(c.raster)) - {255} for c in cells)  # unlabeled cells left out


def test_point_to_pixel_window() -> None:
    a = Annotation(0, sg.Point(8.05, 45.05), {"label": "water"})
    (w,) = PointToPixelWindowPreparer().prepare(task(a), lambda x: "water")
    assert w.bounds[2] - w.bounds[0] == 1 and w.points == [(8.05, 45.05, "water")]


def _window(name: str, col: int, row: int) -> LabeledWindow:
    return LabeledWindow(name, "t", "EPSG:32632", 10.0, (col, row, col + 1, row + 1), T)


def test_splitters_are_deterministic_and_spatial() -> None:
    s = SpatialDataSplitter(0.6, 0.2, 0.2, grid_size=64)
    assert s.split(_window("a", 10, 10)) == s.split(_window("b", 63, 0))  # one cell
    splits = [s.split(_window(f"w{i}", 64 * i, 0)) for i in range(400)]
    shares = {k: splits.count(k) / 400 for k in ("train", "val", "test")}
    assert abs(shares["train"] - 0.6) < 0.08 and abs(shares["val"] - 0.2) < 0.06
    r = RandomDataSplitter(0.5, 0.5, 0.0, seed=3)
    assert [r.split(_window(f"w{i}", 0, 0)) for i in range(20)] == [
        RandomDataSplitter(0.5, 0.5, 0.0, seed=3).split(_window(f"w{i}", 0, 0)) for i in range(20)
    ]
    with pytest.raises(ValueError, match="must be 1"):
        RandomDataSplitter(0.5, 0.4, 0.0)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        SpatialDataSplitter(1.5, -0.5, 0.0, 10)


def test_choose_n_sampler_is_seeded() -> None:
    tasks = [AnnotationTask(str(i), sg.Point(0, 0), T) for i in range(10)]
    a = [t.task_id for t in ChooseNSampler(4, seed=1).sample(tasks)]
    assert a == [t.task_id for t in ChooseNSampler(4, seed=1).sample(tasks)] and len(a) == 4
    assert len(ChooseNSampler(40).sample(tasks)) == 10


def test_annotation_labels_need_a_key_when_several(project: Path) -> None:
    ann = project / "annotations" / "annotation_features.geojson"
    _edit(ann, lambda d: d["features"][2]["properties"]["oe_labels"].update(other=1))
    tasks = load_tasks(project / "annotations" / "annotation_task_features.geojson", ann)
    assert sum(len(t.annotations) for t in tasks) == 360
    found = errors(check_project(project))
    assert found and "several keys" in found[0].message
    assert found[0].hint and "label_property" in found[0].hint
    _edit(project / "finetune_strategies.yaml", lambda d: d.update(label_property="label"))
    assert errors(check_project(project)) == []
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_tasks(project / "model.yaml", ann)


def test_next_version_and_its_image_tag(tmp_path: Path) -> None:
    """Publishing under the next <project>_v<version> tag gives that version's image tag."""
    import subprocess

    from esbuild.gitinfo import git_info
    from esbuild.image import default_tags
    from rslp.finetune.export import next_version

    repo = tmp_path / "repo"
    (repo / "data" / "ft").mkdir(parents=True)
    (repo / "data" / "ft" / "model.yaml").write_text("x: 1\n")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1", "--allow-empty")
    assert next_version(repo, "ft") == "1.0.0"
    git("tag", "ft_v1.2.0")
    git("tag", "ft_v1.10.1")
    git("tag", "other_v9.0.0")
    version = next_version(repo, "ft")
    assert version == "1.11.0"
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v2", "--allow-empty")
    git("tag", f"ft_v{version}")
    tags = default_tags("ft", git_info(repo), "ghcr.io", "team")
    assert "ghcr.io/team/ft:1.11.0" in tags


def test_strategy_argument_errors_are_findings(project: Path) -> None:
    with pytest.raises(ValueError, match="does not fit dtype uint8"):
        PointToRasterWindowPreparer(3, 10.0, "uint8", -1)
    _edit(
        project / "finetune_strategies.yaml",
        lambda d: d["labeled_window_preparer"]["init_args"].update(nodata_value=300),
    )
    (d,) = errors(check_project(project))
    assert d.file.name == "finetune_strategies.yaml" and "does not fit dtype uint8" in d.message
    assert d.key == "labeled_window_preparer.init_args"


def test_both_finetune_configs_are_refused(project: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    convert(project, "reference", ref)
    shutil.copy(project / "finetune_strategies.yaml", ref / "finetune_strategies.yaml")
    with pytest.raises(ProjectError, match="both configure the fine-tune"):
        FinetuneFiles.from_dir(ref)
    assert any("both configure" in d.message for d in errors(check_project(ref)))


def test_vector_labels_go_where_the_task_reads_them() -> None:
    from rslp.finetune.steps import vector_label

    task = {
        "class_path": "rslearn.train.tasks.classification.ClassificationTask",
        "init_args": {"property_name": "category", "classes": ["land", "water"]},
    }
    assert vector_label(task) == ("category", False, ["land", "water"])
    task["init_args"]["read_class_id"] = True
    assert vector_label(task)[1] is True
    assert vector_label({})[0] == "label"


def test_evaluate_refuses_a_fit_of_other_inputs(project: Path, tmp_path: Path) -> None:
    from rslp.errors import StepError
    from rslp.esfinetune_runner import EsFineTuneRunner

    runner = EsFineTuneRunner.from_project(project, tmp_path / "s")
    runner.prepare_windows()
    root = runner.scratch.root
    shutil.copy(project / "checkpoint.ckpt", root / "checkpoint.ckpt")
    (root / "fit.json").write_text(json.dumps({"data": "other", "done": True}))
    with pytest.raises(StepError, match="out of date"):
        runner.evaluate()
