"""Projects in the reference runner's format (olmoearth_run.yaml): load, validate, plan, convert.

The fixtures mirror the structure of real olmoearth_projects configs (their class paths,
init_args and model.yaml conventions) over the demo's small real data and model.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from rslp import formats
from rslp.checks import check_project
from rslp.checks.diagnostics import Diagnostic
from rslp.common.partitioners.projection_args import parse_output_projection
from rslp.config import PartitionStrategiesConfig, PostprocessingStrategiesConfig
from rslp.convert import convert
from rslp.errors import ProjectError
from rslp.espredict_runner import EsPredictRunner
from rslp.project import ProjectFiles, load_partition_strategies, load_postprocessing_strategies
from rslp.runner.context import RunContext
from rslp.runner.scratch import Scratch
from tests.conftest import DEMO, REPO, reference_project

P = "olmoearth_run.runner.tools.partitioners."
Q = "olmoearth_run.runner.tools.postprocessors."
LEGEND = [
    {"value": 0, "label": "land", "color": [124, 67, 18]},
    {"value": 1, "label": "water", "color": [0, 90, 200, 255]},
]
FORM_A = {  # rslearn Projection by class_path (most projects)
    "class_path": "rslearn.utils.geometry.Projection",
    "init_args": {"crs": "EPSG:3857", "x_resolution": 10, "y_resolution": -10},
}
FORM_B = {  # the CRS by a _module_/_callable_ factory (forest_loss_driver)
    "class_path": "rslearn.utils.Projection",
    "init_args": {
        "crs": {"_module_": "rasterio.crs", "_callable_": "CRS.from_epsg", "code": 32632},
        "x_resolution": 10,
        "y_resolution": -10,
    },
}


def raster_run(window: dict, large: dict | None = None, **combine: object) -> dict:
    """An olmoearth_run.yaml of a raster segmentation project (awf, fields_of_the_world)."""
    tiff = {"class_path": Q + "combine_geotiff.CombineGeotiff"}
    if combine:
        tiff["init_args"] = dict(combine)
    return {
        "partition_strategies": {
            "partition_request_geometry": large
            or {
                "class_path": P + "grid_partitioner.GridPartitioner",
                "init_args": {"grid_size": 0.25},
            },
            "prepare_window_geometries": window,
        },
        "postprocessing_strategies": {
            "process_dataset": tiff,
            "process_partition": tiff,
            "process_window": {"class_path": Q + "noop_raster.NoopRaster"},
        },
        "inference_results_config": {
            "data_type": "RASTER",
            "classification_fields": [
                {
                    "property_name": "segment",
                    "band_index": 1,
                    "allowed_values": copy.deepcopy(LEGEND),
                }
            ],
            "detection_objects": None,
            "regression_fields": None,
        },
    }


def vector_run(window_args: dict, combine_args: dict | None = None) -> dict:
    """An olmoearth_run.yaml of a per-window classification project (forest_loss_driver)."""
    gj: dict = {"class_path": Q + "combine_geojson.CombineGeojson"}
    if combine_args:
        gj["init_args"] = combine_args
    return {
        "inference_results_config": {
            "data_type": "vector",  # the reference upper-cases it
            "classification_fields": [
                {
                    "property_name": "category",
                    "band_index": 1,
                    "allowed_values": [
                        {"value": 0, "label": "land", "color": [137, 243, 54]},
                        {"value": 1, "label": "water", "color": [0, 255, 255]},
                    ],
                }
            ],
        },
        "partition_strategies": {
            "partition_request_geometry": {
                "class_path": P + "chunk_partitioner.ChunkPartitioner",
                "init_args": {"num_geometries_per_partition": 5000},
            },
            "prepare_window_geometries": {
                "class_path": P + "fixed_window_partitioner.FixedWindowPartitioner",
                "init_args": window_args,
            },
        },
        "postprocessing_strategies": {
            "process_window": gj,
            "process_partition": gj,
            "process_dataset": gj,
        },
    }


GRID_UTM = {
    "class_path": P + "grid_partitioner.GridPartitioner",
    "init_args": {"grid_size": 64, "output_projection": FORM_A, "use_utm": True},
}
FIXTURES = {
    # awf: Grid degrees / Grid pixels with a Projection and use_utm, CombineGeotiff
    "grid-projection-utm": (DEMO, raster_run(GRID_UTM)),
    # fields_of_the_world: the same with CombineGeotiff nodata_value
    "grid-nodata": (DEMO, raster_run(GRID_UTM, nodata_value=2)),
    # forest_loss_driver: Chunk / FixedWindow with a factory-dict projection, CombineGeojson
    "fixed-factory-projection": (
        REPO / "data" / "demo-vector",
        vector_run({"window_size": 32, "output_projection": FORM_B}),
    ),
    # forest_loss_driver (newer): the same with use_utm
    "fixed-factory-utm": (
        REPO / "data" / "demo-vector",
        vector_run({"window_size": 32.0, "use_utm": True, "output_projection": FORM_B}),
    ),
    # marine_infra: CombineGeojson with the result's geometry and without request properties
    "vector-result-geometry": (
        REPO / "data" / "demo-vector",
        vector_run(
            {"window_size": 32, "use_utm": True, "output_projection": FORM_A},
            {"geometry_source": "result", "include_request_properties": False},
        ),
    ),
}


def _vector_model(src: Path) -> str:
    text = (src / "model.yaml").read_text()
    return text


@pytest.fixture(params=sorted(FIXTURES))
def foreign(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    src, run = FIXTURES[request.param]
    return request.param, reference_project(src, tmp_path / request.param, run)


def errors(diags: list[Diagnostic]) -> list[str]:
    return [d.text() for d in diags if d.severity == "error"]


def test_reference_fixtures_validate_and_plan_offline(foreign, tmp_path: Path) -> None:
    name, project = foreign
    files = ProjectFiles.from_dir(project)
    assert files.format == formats.REFERENCE
    assert files.partition_strategies_yaml.name == "olmoearth_run.yaml"
    assert files.request_geojson.name == "prediction_request_geometry.geojson"
    diags = check_project(project, deep=True)  # every rule, rslearn's parse of model.yaml too
    assert errors(diags) == []
    runner = EsPredictRunner.from_project(project, tmp_path / "scratch")
    partitions = runner.partition()
    assert partitions
    windows = [
        json.loads(line)
        for p in (runner.scratch.plan_dir / "windows").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert windows
    crs = {w["crs"] for w in windows}
    sizes = {(w["bounds"][2] - w["bounds"][0], w["bounds"][3] - w["bounds"][1]) for w in windows}
    assert {w["resolution"] for w in windows} == {10.0}
    if name.startswith("grid"):
        assert crs == {"EPSG:32632"}  # use_utm: the UTM zone, the Projection's resolution
        assert sizes == {(64, 64)}
    elif name == "fixed-factory-projection":
        assert crs == {"EPSG:32632"}  # the factory-built CRS itself
        assert sizes == {(32, 32)}
        assert len(partitions) == 1  # Chunk: 5000 features per partition
    else:
        assert crs == {"EPSG:32632"} and sizes == {(32, 32)}


def test_model_yaml_template_variables_are_set_for_rslearn(tmp_path: Path) -> None:
    project = reference_project(DEMO, tmp_path / "p", raster_run(GRID_UTM))
    files = ProjectFiles.from_dir(project)
    ctx = RunContext(files=files, scratch=Scratch(tmp_path / "scratch"))
    # ${PREDICTION_OUTPUT_LAYER} is the reference's "output" layer
    assert ctx.output_layer.name == "output"
    from rslp.runner.inference import predict_config, run_templates

    cfg = predict_config(ctx)
    writer = cfg["trainer"]["callbacks"][0]["init_args"]
    assert writer["path"] == str(ctx.scratch.dataset)  # "placeholder" pointed at the dataset
    values = run_templates(ctx)
    assert values["PREDICTION_OUTPUT_LAYER"] == "output" and values["NUM_WORKERS"] == "0"
    assert values["TRAINER_DATA_PATH"] == str(ctx.scratch.root / "trainer")
    assert values["WANDB_PROJECT"] == ""
    assert values["DATASET_PATH"] == str(ctx.scratch.dataset)
    assert values["EXTRA_FILES_PATH"] == str(project)
    (project / "extra_model_files").mkdir()
    assert run_templates(ctx)["EXTRA_FILES_PATH"] == str(project / "extra_model_files")


def test_legend_comes_from_inference_results_config(tmp_path: Path) -> None:
    project = reference_project(DEMO, tmp_path / "p", raster_run(GRID_UTM))
    ctx = RunContext(files=ProjectFiles.from_dir(project), scratch=Scratch(tmp_path / "s"))
    layer = ctx.output_layer
    assert layer.legend is not None
    assert layer.legend.rgba_of() == {0: (124, 67, 18, 255), 1: (0, 90, 200, 255)}
    assert layer.class_names == ["land", "water"]  # dataset.json's names


def _diag_for(diags: list[Diagnostic], key: str) -> Diagnostic:
    found = [d for d in diags if d.key == key and d.severity == "error"]
    assert found, [d.text() for d in diags]
    return found[0]


def test_errors_name_olmoearth_run_yaml_keys_and_lines(tmp_path: Path) -> None:
    window = {
        "class_path": P + "grid_partitioner.GridPartitioner",
        "init_args": {
            "grid_size": 64,
            "output_projection": {
                **FORM_A,
                "init_args": {"crs": "EPSG:3857", "x_resolution": 10, "y_resolution": 10},
            },
        },
    }
    run = raster_run(window)
    run["partition_strategies"]["partition_request_geometry"] = {
        "class_path": P + "reprojection_partitioner.ReprojectionPartitioner"
    }
    project = reference_project(DEMO, tmp_path / "p", run)
    diags = check_project(project)
    text = (project / "olmoearth_run.yaml").read_text().splitlines()
    d = _diag_for(diags, "partition_strategies.prepare_window_geometries.init_args")
    assert d.file.name == "olmoearth_run.yaml"
    assert "north-up" in d.message and "y_resolution=10" in d.message
    assert "init_args" in text[d.line - 1]
    d = _diag_for(diags, "partition_strategies.partition_request_geometry.class_path")
    assert "only at the windows level" in d.message
    assert "ReprojectionPartitioner" in text[d.line - 1]
    # the runner's own loading names the same file and key path
    del run["postprocessing_strategies"]["process_partition"]
    (project / "olmoearth_run.yaml").write_text(yaml.safe_dump(run))
    with pytest.raises(ProjectError) as e:
        load_postprocessing_strategies(ProjectFiles.from_dir(project))
    assert e.value.key == "postprocessing_strategies.process_partition"
    assert e.value.path.name == "olmoearth_run.yaml"


def test_results_config_must_match_the_output_layer(tmp_path: Path) -> None:
    run = raster_run(GRID_UTM)
    irc = run["inference_results_config"]
    irc["data_type"] = "VECTOR"
    project = reference_project(DEMO, tmp_path / "p", run)
    d = _diag_for(check_project(project), "inference_results_config.data_type")
    assert "does not match the output layer 'output', which is raster" in d.message
    irc["data_type"] = "RASTER"
    irc["classification_fields"][0]["allowed_values"].append(
        {"value": 255, "label": "cloud", "color": [9, 9, 9]}
    )
    irc["classification_fields"][0]["band_index"] = 2
    (project / "olmoearth_run.yaml").write_text(yaml.safe_dump(run))
    diags = check_project(project)
    assert (
        "nodata value"
        in _diag_for(
            diags, "inference_results_config.classification_fields[0].allowed_values[2].value"
        ).message
    )
    assert (
        "has 1 band(s)"
        in _diag_for(diags, "inference_results_config.classification_fields[0].band_index").message
    )


def test_vector_property_name_must_be_what_the_task_writes(tmp_path: Path) -> None:
    src, run = FIXTURES["fixed-factory-projection"]
    run = copy.deepcopy(run)
    run["inference_results_config"]["classification_fields"][0]["property_name"] = "new_label"
    project = reference_project(src, tmp_path / "p", run)
    diags = check_project(project)
    (d,) = [d for d in diags if d.rule == "results"]
    assert d.severity == "warning" and "writes its classes as 'category'" in d.message
    assert d.key == "inference_results_config.classification_fields[0].property_name"


def test_reference_nodata_default_is_kept_ours_with_a_warning(tmp_path: Path) -> None:
    project = reference_project(DEMO, tmp_path / "p", raster_run(GRID_UTM, nodata_value=0))
    diags = check_project(project)
    assert errors(diags) == []
    warned = [d for d in diags if d.rule == "reference"]
    assert warned and "class 'land'" in warned[0].message and "nodata 255" in warned[0].message
    assert warned[0].key == "postprocessing_strategies.process_dataset.init_args.nodata_value"


def test_both_formats_in_one_directory_is_an_error(demo_copy: Path) -> None:
    (demo_copy / "olmoearth_run.yaml").write_text(yaml.safe_dump(raster_run(GRID_UTM)))
    with pytest.raises(ProjectError, match="keep one format"):
        ProjectFiles.from_dir(demo_copy)
    diags = check_project(demo_copy)
    assert any("keep one format" in d.message for d in diags)


def test_projection_forms() -> None:
    assert parse_output_projection(FORM_A) == ("EPSG:3857", 10.0)
    assert parse_output_projection(FORM_B) == ("EPSG:32632", 10.0)
    from rasterio.crs import CRS
    from rslearn.utils.geometry import Projection

    assert parse_output_projection(Projection(CRS.from_epsg(32618), 5, -5)) == ("EPSG:32618", 5.0)
    factory = {"_module_": "rslearn.utils.geometry", "_callable_": "Projection",
               "crs": {"_module_": "rasterio.crs", "_callable_": "CRS.from_epsg", "code": 4326},
               "x_resolution": 0.001, "y_resolution": -0.001}  # fmt: skip
    assert parse_output_projection(factory) == ("EPSG:4326", 0.001)
    with pytest.raises(ValueError, match="is not a CRS"):
        parse_output_projection({**FORM_A, "init_args": {"crs": "EPSG:0", "x_resolution": 1}})
    with pytest.raises(ValueError, match="cannot import"):
        parse_output_projection({"_module_": "rasterio.crs", "_callable_": "Nope", "code": 1})


def _effective(files: ProjectFiles, scratch: Path) -> tuple:
    ctx = RunContext(files=files, scratch=Scratch(scratch))
    part = load_partition_strategies(files)
    post = load_postprocessing_strategies(files)
    return (
        type(ctx.large_partitioner).__name__,
        type(ctx.small_partitioner).__name__,
        ctx.projection,
        {
            k: (type(ctx.postprocessor(k)).__name__, vars(ctx.postprocessor(k)))
            for k in ("strategy_small", "strategy_medium", "strategy_large")
        },  # fmt: skip
        part.strategy_large,
        post.inference_results_config,
    )


def test_convert_round_trips(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    convert(DEMO, "reference", ref)
    assert not (ref / "partition_strategies.yaml").exists()
    assert ProjectFiles.from_dir(ref).format == formats.REFERENCE
    back = tmp_path / "back"
    convert(ref, "seed", back)
    for name in ("partition_strategies.yaml", "postprocessing_strategies.yaml"):
        original = yaml.safe_load((DEMO / name).read_text())
        again = yaml.safe_load((back / name).read_text())
        if name == "postprocessing_strategies.yaml":
            again.pop("inference_results_config")  # made from the output layer on the way
        assert again == original, name
    assert (back / "prediction" / "prediction_request_geometry.geojson").read_bytes() == (
        DEMO / "prediction" / "test-request1.geojson"
    ).read_bytes()
    assert (back / "checkpoint.ckpt").read_bytes() == (DEMO / "checkpoint.ckpt").read_bytes()
    e = [
        _effective(ProjectFiles.from_dir(p), tmp_path / f"s{i}")
        for i, p in enumerate((DEMO, ref, back))
    ]
    assert e[0][:4] == e[1][:4] == e[2][:4]
    # and from the reference side: a factory-dict projection survives as the same projection
    src, run = FIXTURES["fixed-factory-projection"]
    foreign = reference_project(src, tmp_path / "foreign", run)
    seed = tmp_path / "seed"
    notes = convert(foreign, "seed", seed)
    assert any("projection" in n for n in notes)
    assert yaml.safe_load((seed / "partition_strategies.yaml").read_text())["projection"] == {
        "crs": "EPSG:32632",
        "resolution": 10.0,
    }
    again = tmp_path / "again"
    convert(seed, "reference", again)
    a, b, c = (
        _effective(ProjectFiles.from_dir(p), tmp_path / f"t{i}")
        for i, p in enumerate((foreign, seed, again))
    )
    assert a == b == c


def test_convert_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="already in the seed format"):
        convert(DEMO, "seed", tmp_path / "x")
    (tmp_path / "exists").mkdir()
    with pytest.raises(ProjectError, match="already exists"):
        convert(DEMO, "reference", tmp_path / "exists")
    broken = tmp_path / "broken"
    shutil.copytree(DEMO, broken, ignore=shutil.ignore_patterns("scratch", "imagery"))
    (broken / "postprocessing_strategies.yaml").write_text("strategy_small: [\n")
    with pytest.raises(ProjectError, match="not valid YAML"):
        convert(broken, "reference", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "exists"]


def test_seed_models_are_the_sections() -> None:
    """The section mapping covers every seed key (one model, two layouts)."""
    assert set(formats.REFERENCE_KEYS[formats.PARTITION_ROLE]) == set(
        PartitionStrategiesConfig.model_fields
    ) - {"projection"}
    assert set(formats.REFERENCE_KEYS[formats.POSTPROCESSING_ROLE]) == set(
        PostprocessingStrategiesConfig.model_fields
    )


def test_classes_from_one_with_nodata_zero_are_not_a_collision(tmp_path: Path) -> None:
    run = raster_run(GRID_UTM)
    run["inference_results_config"]["classification_fields"][0]["allowed_values"] = [
        {"value": 1, "label": "land", "color": [1, 1, 1]},
        {"value": 2, "label": "water", "color": [2, 2, 2]},
    ]
    project = reference_project(DEMO, tmp_path / "p", run)
    cfg = json.loads((project / "dataset.json").read_text())
    out = cfg["layers"]["output"]
    out.pop("class_names")
    out["band_sets"][0]["nodata_value"] = 0
    (project / "dataset.json").write_text(json.dumps(cfg))
    ctx = RunContext(files=ProjectFiles.from_dir(project), scratch=Scratch(tmp_path / "s"))
    layer = ctx.output_layer  # nodata 0 is no class: values start at 1
    assert layer.nodata == 0 and layer.class_at(0) is None and layer.class_at(2) == "water"
    assert not [d for d in check_project(project) if d.rule in ("reference", "output_layer")]


def test_strategy_files_of_two_formats_are_refused(tmp_path: Path) -> None:
    project = reference_project(DEMO, tmp_path / "p", raster_run(GRID_UTM))
    with pytest.raises(ProjectError, match="is a seed-format file"):
        ProjectFiles(
            model_yaml=project / "model.yaml",
            dataset_json=project / "dataset.json",
            partition_strategies_yaml=project / "olmoearth_run.yaml",
            postprocessing_strategies_yaml=DEMO / "postprocessing_strategies.yaml",
            request_geojson=project / "prediction_request_geometry.geojson",
        )


def test_convert_names_bad_files_instead_of_crashing(demo_copy: Path, tmp_path: Path) -> None:
    part = yaml.safe_load((demo_copy / "partition_strategies.yaml").read_text())
    part["projection"] = "EPSG:4326"
    (demo_copy / "partition_strategies.yaml").write_text(yaml.safe_dump(part))
    with pytest.raises(ProjectError) as e:
        convert(demo_copy, "reference", tmp_path / "out")
    assert e.value.path.name == "partition_strategies.yaml" and e.value.key == "projection"
    assert not (tmp_path / "out").exists()
