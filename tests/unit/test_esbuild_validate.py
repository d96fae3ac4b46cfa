"""esbuild validate: broken variants of the demo, each naming the right file, key and message."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from esbuild.cli import cli
from esbuild.validate import validate_project
from rslp.checks import schema as schemas
from tests.conftest import DEMO, REPO, SEED_SAMPLE, SEED_SAMPLE_ERRORS

Mutation = Callable[[Path], None]


def edit_json(name: str, fn: Callable[[dict], None]) -> Mutation:
    def m(d: Path) -> None:
        data = json.loads((d / name).read_text())
        fn(data)
        (d / name).write_text(json.dumps(data, indent=1))

    return m


def edit_yaml(name: str, fn: Callable[[dict], None]) -> Mutation:
    def m(d: Path) -> None:
        data = yaml.safe_load((d / name).read_text())
        fn(data)
        (d / name).write_text(yaml.safe_dump(data, sort_keys=False))

    return m


def replace_text(name: str, old: str, new: str) -> Mutation:
    def m(d: Path) -> None:
        text = (d / name).read_text()
        assert old in text, f"{old!r} not in {name}"
        (d / name).write_text(text.replace(old, new, 1))

    return m


def write(name: str, text: str) -> Mutation:
    def m(d: Path) -> None:
        (d / name).write_text(text)

    return m


REQ = "prediction/test-request1.geojson"


def req_feature(fn: Callable[[dict], None]) -> Mutation:
    return edit_json(REQ, lambda d: fn(d["features"][0]))


def model_conv(d: dict) -> dict:
    return d["model"]["init_args"]["model"]["init_args"]["encoder"][0]["init_args"]["modules"][0]


# (id, mutation, file, key fragment or None, message fragment)
CASES: list[tuple[str, Mutation, str, str | None, str]] = [
    ("missing-dataset", lambda d: (d / "dataset.json").unlink(), "dataset.json", None, "file is missing"),
    ("dataset-json-syntax", write("dataset.json", '{"layers": {'), "dataset.json", None, "not valid JSON"),
    ("model-yaml-syntax", write("model.yaml", "model: [unclosed\n"), "model.yaml", None, "not valid YAML"),
    ("partition-missing-small", edit_yaml("partition_strategies.yaml", lambda d: d.pop("strategy_small")),
     "partition_strategies.yaml", None, "'strategy_small' is a required property"),
    ("partition-bad-class", replace_text("partition_strategies.yaml", "partitioners.grid.GridPartitioner",
     "partitioners.grid.GridPartitionr"), "partition_strategies.yaml", "strategy_small.class_path", "has no class"),
    ("partition-unknown-arg", replace_text("partition_strategies.yaml", "window_size: 128", "window_sise: 128"),
     "partition_strategies.yaml", "strategy_large.init_args", "unknown argument"),
    ("partition-missing-arg", replace_text("partition_strategies.yaml", "grid_size: 128", "limit: 3"),
     "partition_strategies.yaml", "strategy_small.init_args", "missing required argument"),
    ("postprocessing-unknown-stage", edit_yaml("postprocessing_strategies.yaml",
     lambda d: d.update(strategy_huge={"class_path": "x.Y"})), "postprocessing_strategies.yaml", None,
     "Additional properties are not allowed"),
    ("postprocessing-bad-module", replace_text("postprocessing_strategies.yaml",
     "rslp.common.postprocessing.raster.CombineGeotiff", "rslp.common.postprocessing.rastr.CombineGeotiff"),
     "postprocessing_strategies.yaml", "strategy_medium.class_path", "does not import"),
    ("layer-type", edit_json("dataset.json", lambda d: d["layers"]["image"].update(type="rastr")),
     "dataset.json", "layers.image.type", "'rastr'"),
    ("band-names", edit_json("dataset.json", lambda d: d["layers"]["image"]["band_sets"][0].update(
     bands=["blue", "green", "red", "nir"])), "dataset.json", "layers.image.band_sets[0].bands", "B1..B4"),
    ("too-many-bands", edit_json("dataset.json", lambda d: d["layers"]["image"]["band_sets"][0].update(
     bands=["B1", "B2", "B3", "B4", "B5"])), "dataset.json", "band_sets[0].bands", "['B5']"),
    ("data-source-class", edit_json("dataset.json", lambda d: d["layers"]["image"]["data_source"].update(
     class_path="rslearn.data_sources.local_files.LocalFile")), "dataset.json",
     "layers.image.data_source.class_path", "has no class"),
    ("data-source-arg", edit_json("dataset.json", lambda d: d["layers"]["image"]["data_source"]["init_args"]
     .update(source_dir="imagery")), "dataset.json", "layers.image.data_source.init_args", "source_dir"),
    ("dataset-unknown-key", edit_json("dataset.json", lambda d: d.update(layer={})), "dataset.json", None,
     "Additional properties"),
    ("writer-layer-missing", replace_text("model.yaml", "output_layer: output", "output_layer: outputs"),
     "model.yaml", "trainer.callbacks[0].init_args.output_layer", "'outputs' is not a layer"),
    ("output-layer-type", edit_json("dataset.json", lambda d: d["layers"].update(output={"type": "vector"})),
     "dataset.json", "layers.output.type", "SegmentationTask writes raster"),
    ("model-class", replace_text("model.yaml", "rslearn.models.conv.Conv\n", "rslearn.models.conv.Convolution\n"),
     "model.yaml", "encoder[0].init_args.modules[0].class_path", "has no class"),
    ("model-arg", edit_yaml("model.yaml", lambda d: model_conv(d)["init_args"].update(in_chanels=4)),
     "model.yaml", "modules[0].init_args", "in_chanels"),
    ("model-missing-arg", edit_yaml("model.yaml", lambda d: model_conv(d)["init_args"].pop("kernel_size")),
     "model.yaml", "modules[0].init_args", "kernel_size"),
    ("model-placeholder", replace_text("model.yaml", "num_classes: 2", "num_classes: {NUM_CLASSES}"),
     "model.yaml", None, "unfilled placeholder {NUM_CLASSES}"),
    ("model-no-data", edit_yaml("model.yaml", lambda d: d.pop("data")), "model.yaml", None,
     "'data' is a required property"),
    ("model-bad-value", replace_text("model.yaml", "batch_size: 8", "batch_size: eight"), "model.yaml", None,
     "rslearn cannot parse model.yaml"),
    ("request-no-end", req_feature(lambda f: f["properties"].pop("es_end_time")), REQ,
     "features[0].properties", "feature has no es_end_time/oe_end_time"),
    ("request-no-times", req_feature(lambda f: f.update(properties={})), REQ, "features[0].properties",
     "no es_start_time"),
    ("request-reversed", req_feature(lambda f: f["properties"].update(es_start_time="2025-01-01T00:00:00Z")),
     REQ, "features[0].properties", "reversed"),
    ("request-bad-time", req_feature(lambda f: f["properties"].update(es_start_time="June 2024")), REQ,
     "features[0].properties.es_start_time", "not an ISO 8601"),
    ("request-bowtie", req_feature(lambda f: f.update(geometry={"type": "Polygon", "coordinates": [
     [[8.6, 46.0], [8.7, 46.1], [8.7, 46.0], [8.6, 46.1], [8.6, 46.0]]]})), REQ, "features[0].geometry",
     "Self-intersection"),
    ("request-not-lonlat", req_feature(lambda f: f.update(geometry={"type": "Point", "coordinates":
     [470000, 5100000]})), REQ, "features[0].geometry.coordinates", "not lon/lat"),
    ("request-duplicate-id", edit_json(REQ, lambda d: d["features"][1].update(id=d["features"][0]["id"])),
     REQ, "features[1].id", "repeats features[0]"),
    ("request-not-collection", edit_json(REQ, lambda d: d.update(type="Feature")), REQ, "type",
     "'FeatureCollection' was expected"),
    ("request-empty", edit_json(REQ, lambda d: d.update(features=[])), REQ, "features", "should be non-empty"),
    ("request-bad-geometry-type", req_feature(lambda f: f["geometry"].update(type="Circle")), REQ,
     "features[0].geometry.type", "'Circle'"),
    ("request-crs", edit_json(REQ, lambda d: d.update(crs={"type": "name"})), REQ, "crs", "no 'crs' member"),
    ("req-index-url", write("requirements.txt", "--index-url https://example.invalid/simple\nnumpy\n"),
     "requirements.txt", None, "changes where packages come from"),
    ("req-vcs", write("requirements.txt", "git+https://example.invalid/x.git#egg=x\n"), "requirements.txt",
     None, "URL or VCS"),
    ("req-editable", write("requirements.txt", "-e .\n"), "requirements.txt", None, "option -e"),
    ("req-local-path", write("requirements.txt", "./wheels/x-1.0-py3-none-any.whl\n"), "requirements.txt",
     None, "local path"),
    ("req-syntax", write("requirements.txt", "numpy>>=2\n"), "requirements.txt", None, "not a valid requirement"),
    ("checkpoint-empty", write("checkpoint.ckpt", ""), "checkpoint.ckpt", None, "checkpoint file is empty"),
    ("checkpoint-garbage", write("checkpoint.ckpt", "weights go here"), "checkpoint.ckpt", None, "not a PyTorch checkpoint"),
    ("layer-name-dot", edit_json("dataset.json", lambda d: d["layers"].update({"image.v2": d["layers"]["image"]})),
     "dataset.json", "layers", "must not contain periods"),
    ("bad-duration", edit_json("dataset.json", lambda d: d["layers"]["image"]["data_source"].update(time_offset="a week")),
     "dataset.json", "layers.image.data_source.time_offset", "not a duration"),
    ("partition-negative-size", replace_text("partition_strategies.yaml", "window_size: 128", "window_size: -5"),
     "partition_strategies.yaml", "strategy_large.init_args", "window_size must be a positive whole number"),
    ("strategy-arg-type", replace_text("postprocessing_strategies.yaml", "clip_to_request: true", "clip_to_request: maybe"),
     "postprocessing_strategies.yaml", "strategy_small.init_args", "clip_to_request: expected bool, got 'maybe'"),
    ("projection-crs", replace_text("partition_strategies.yaml", "resolution: 10", "resolution: 10\n  crs: EPSG:99999"),
     "partition_strategies.yaml", "projection.crs", "unknown CRS"),
    ("postprocessor-wrong-type", replace_text("postprocessing_strategies.yaml",
     "rslp.common.postprocessing.raster.CombineGeotiff", "rslp.common.postprocessing.vector.CombineGeojson"),
     "postprocessing_strategies.yaml", "strategy_medium.class_path", "handles vector outputs"),
    ("input-unknown-layer", replace_text("model.yaml", "layers: [image]", "layers: [imagery]"), "model.yaml",
     "inputs.image.layers[0]", "not defined in dataset.json"),
    ("input-unknown-band", replace_text("model.yaml", "bands: [B1, B2, B3, B4]", "bands: [B1, B2, B3, B8]"),
     "model.yaml", "inputs.image.bands", "['B8']"),
    ("nodata-is-a-class", edit_json("dataset.json", lambda d: d["layers"]["output"]["band_sets"][0].update(nodata_value=1)),
     "dataset.json", "layers.output.band_sets[0].nodata_value", "is the id of class 'water'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "file", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_broken_variant_is_reported(
    demo_copy: Path, mutate: Mutation, file: str, key: str | None, message: str
) -> None:
    mutate(demo_copy)
    diags = [d for d in validate_project(demo_copy) if d.severity == "error"]
    assert diags, "expected at least one error"
    target = (demo_copy / file).resolve()
    matching = [d for d in diags if d.file.resolve() == target and message in d.message]
    assert matching, f"no error on {file} mentioning {message!r}; got: {[d.text() for d in diags]}"
    if key is not None:
        assert any(d.key and key in d.key for d in matching), [d.key for d in matching]
    assert all(d.line is None or d.line > 0 for d in diags)


def test_deep_checks_the_checkpoint_against_the_model(demo_copy: Path) -> None:
    shutil.copy(REPO / "data" / "demo-vector" / "checkpoint.ckpt", demo_copy / "checkpoint.ckpt")
    assert not [d for d in validate_project(demo_copy) if d.severity == "error"]
    diags = validate_project(demo_copy, deep=True)
    assert any(
        "does not fit model.yaml" in d.message and d.file.name == "checkpoint.ckpt" for d in diags
    )


def test_allow_sources_permits_index_options(demo_copy: Path) -> None:
    (demo_copy / "requirements.txt").write_text(
        "--extra-index-url https://example.invalid/simple\nnumpy\n"
    )
    assert [d for d in validate_project(demo_copy) if d.severity == "error"]
    assert not [d for d in validate_project(demo_copy, allow_sources=True) if d.severity == "error"]


@pytest.mark.parametrize("project", ["demo", "demo-vector"])
def test_valid_demos_pass_and_nothing_is_written(project: str, tmp_path: Path) -> None:
    d = tmp_path / project
    shutil.copytree(REPO / "data" / project, d, ignore=shutil.ignore_patterns("scratch"))
    before = sorted((p.relative_to(d), p.stat().st_mtime_ns) for p in d.rglob("*"))
    assert validate_project(d, deep=True) == []
    assert sorted((p.relative_to(d), p.stat().st_mtime_ns) for p in d.rglob("*")) == before


def test_seed_sample_reports_exactly_its_known_problems() -> None:
    diags = [d for d in validate_project(SEED_SAMPLE) if d.severity == "error"]
    kinds = set()
    for d in diags:
        if d.file.name == "dataset.json":
            assert "planetary_computer" in d.message and d.key.endswith("data_source.name")
            kinds.add("cloud data source")
        elif d.file.name == "model.yaml" and "rslp.helios" in d.message:
            kinds.add("foreign model class")
        elif d.file.name == "model.yaml" and "placeholder" in d.message:
            kinds.add("placeholder")
        elif d.file.name == "checkpoint.ckpt":
            kinds.add("empty checkpoint")
        else:
            pytest.fail(f"unexpected error {d.text()}")
    assert kinds == {"cloud data source", "foreign model class", "placeholder", "empty checkpoint"}


def test_committed_schemas_are_up_to_date() -> None:
    for name, schema in schemas.generate().items():
        committed = (REPO / "rslp" / "checks" / "schemas" / name).read_text()
        assert committed == schemas.dumps(schema), (
            f"{name} is stale: run 'esbuild schema --out rslp/checks/schemas'"
        )


def test_schemas_round_trip_the_demos() -> None:
    from jsonschema import Draft202012Validator

    for project in ("demo", "demo-vector"):
        d = REPO / "data" / project
        for fname, sname in [
            ("dataset.json", "dataset.schema.json"),
            ("model.yaml", "model.schema.json"),
            ("partition_strategies.yaml", "partition_strategies.schema.json"),
            ("postprocessing_strategies.yaml", "postprocessing_strategies.schema.json"),
        ]:
            data = yaml.safe_load((d / fname).read_text())
            Draft202012Validator(schemas.shipped(sname)).validate(data)


def test_cli_formats_and_exit_codes(demo_copy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(DEMO)])
    assert ok.exit_code == 0, ok.output
    (demo_copy / "requirements.txt").write_text("-e .\n")
    gh = runner.invoke(cli, ["validate", str(demo_copy), "--format", "github"])
    assert gh.exit_code == 1
    line = [ln for ln in gh.output.splitlines() if ln.startswith("::error")][0]
    assert "requirements.txt,line=1" in line and "option -e" in line
    js = runner.invoke(cli, ["validate", str(demo_copy), "--format", "json"])
    assert js.exit_code == 1
    assert json.loads(js.output)[0]["rule"] == "requirements"
    usage = runner.invoke(cli, ["validate", str(demo_copy), "--format", "xml"])
    assert usage.exit_code == 2
    out = runner.invoke(cli, ["schema", "--out", str(tmp_path / "s")])
    assert out.exit_code == 0 and (tmp_path / "s" / "dataset.schema.json").exists()


PC_REQUIREMENTS = "planetary_computer>=1.0\nscipy\n"


def test_seed_sample_with_its_requirement_reports_only_its_real_problems(tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    shutil.copytree(SEED_SAMPLE, sample)
    (sample / "requirements.txt").write_text(PC_REQUIREMENTS)
    out = CliRunner().invoke(cli, ["validate", str(sample), "--format", "json"])
    assert out.exit_code == 1
    found = json.loads(out.stdout)
    notices = [d for d in found if d["severity"] == "notice"]
    assert len(notices) == 12 and all("planetary_computer" in d["message"] for d in notices)
    errors = {(Path(d["file"]).name, d["rule"]) for d in found if d["severity"] == "error"}
    assert errors == SEED_SAMPLE_ERRORS, errors
    strict = CliRunner().invoke(
        cli, ["validate", str(sample), "--format", "json", "--require-imports"]
    )
    found = json.loads(strict.stdout)
    assert not [d for d in found if d["severity"] == "notice"]
    assert len([d for d in found if "No module named 'planetary_computer'" in d["message"]]) == 12
