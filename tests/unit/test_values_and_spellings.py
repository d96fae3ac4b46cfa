"""Bad input on the reference format's surfaces (legends, nodata, bundles, file names),
refused before any window as the seed format's is: one error naming file, line, key, fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from esbuild.validate import validate_project
from rslp.checks.preflight import PreflightError, preflight
from rslp.errors import ProjectError
from rslp.project import ProjectFiles
from tests.conftest import REPO, assert_scratch_untouched
from tests.e2e.test_cli_run import esrunner
from tests.unit.test_esbuild_validate import replace_text

CROPLAND = REPO / "data" / "olmoearth-cropland"


@pytest.fixture
def cropland(tmp_path: Path) -> Path:
    dst = tmp_path / "cropland"
    shutil.copytree(CROPLAND, dst, ignore=shutil.ignore_patterns("scratch", "scripts", "truth"))
    return dst


def _errors(project: Path) -> list:
    return [d for d in validate_project(project) if d.severity == "error"]


def _refused(project: Path) -> PreflightError:
    with pytest.raises(PreflightError) as e:
        preflight(ProjectFiles.from_dir(project))
    return e.value


CASES = [
    (
        "legend value twice",
        replace_text("olmoearth_run.yaml", "        - value: 2\n", "        - value: 1\n"),
        "olmoearth_run.yaml",
        "inference_results_config.classification_fields[0].allowed_values[1].value",
        "value 1 is listed twice (allowed_values[0] and [1])",
    ),
    (
        "legend label twice",
        replace_text("olmoearth_run.yaml", "label: crop\n", "label: not_crop\n"),
        "olmoearth_run.yaml",
        "inference_results_config.classification_fields[0].allowed_values[1].label",
        "label 'not_crop' is listed twice",
    ),
    (
        "combine nodata out of uint8",
        replace_text("olmoearth_run.yaml", "nodata_value: 255", "nodata_value: -9999"),
        "olmoearth_run.yaml",
        "postprocessing_strategies.process_dataset.init_args.nodata_value",
        "nodata_value -9999 does not fit uint8 (0..255): the combined COG is uint8",
    ),
    (
        "layer nodata out of uint8",
        replace_text("dataset.json", '"nodata_value": 255', '"nodata_value": 256'),
        "dataset.json",
        "layers.output.band_sets[0].nodata_value",
        "nodata_value 256 does not fit uint8 (0..255)",
    ),
    (
        "fractional nodata in an integer layer",
        replace_text("dataset.json", '"nodata_value": 255', '"nodata_value": 2.5'),
        "dataset.json",
        "layers.output.band_sets[0].nodata_value",
        "2.5 is not a whole number",
    ),
    (
        "colour out of range",
        replace_text("olmoearth_run.yaml", "[136, 33, 233]", "[136, 33, 300]"),
        "olmoearth_run.yaml",
        "inference_results_config.classification_fields[0].allowed_values[0].color",
        "",
    ),
    (
        "colour of two channels",
        replace_text("olmoearth_run.yaml", "[136, 33, 233]", "[136, 33]"),
        "olmoearth_run.yaml",
        "inference_results_config.classification_fields[0].allowed_values[0].color",
        "",
    ),
    (
        "class value out of uint8",
        replace_text("olmoearth_run.yaml", "        - value: 2\n", "        - value: 300\n"),
        "olmoearth_run.yaml",
        "inference_results_config.classification_fields[0].allowed_values[1].value",
        "class value 300 does not fit uint8 (0..255): the output layer 'output' is uint8",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "file", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_value_its_type_cannot_hold_is_one_error_in_validate_and_before_the_run(
    cropland: Path, tmp_path: Path, mutate, file: str, key: str, message: str
) -> None:
    mutate(cropland)
    errors = _errors(cropland)
    assert len(errors) == 1, [d.text() for d in errors]
    (d,) = errors
    assert d.file.name == file and d.key == key and message in d.message, d.text()
    assert d.line is not None and d.hint or message == "", d.text()
    refused = _refused(cropland)
    assert [(e.file.name, e.key) for e in refused.diagnostics] == [(file, key)]
    out = esrunner("run", str(cropland), "--scratch", str(tmp_path / "scratch"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"{file}:" in out.stderr and key in out.stderr
    assert_scratch_untouched(tmp_path / "scratch")


def test_seed_format_combine_nodata_is_checked_too(demo_copy: Path) -> None:
    large = "strategy_large:\n  class_path: rslp.common.postprocessing.raster.CombineGeotiff\n"
    replace_text(
        "postprocessing_strategies.yaml", large, large + "  init_args: {nodata_value: 256}\n"
    )(demo_copy)
    errors = _errors(demo_copy)
    assert any(
        d.file.name == "postprocessing_strategies.yaml"
        and d.key == "strategy_large.init_args.nodata_value"
        and "256 does not fit uint8" in d.message
        for d in errors
    ), [d.text() for d in errors]


def test_a_broken_encoder_config_is_an_error_at_its_line(cropland: Path, tmp_path: Path) -> None:
    config = cropland / "extra_model_files" / "config.json"
    lines = config.read_text().splitlines()
    lines[2] = lines[2] + ","  # a trailing comma after the third line's value
    config.write_text("\n".join(lines) + "\n")
    errors = _errors(cropland)
    assert len(errors) == 1, [d.text() for d in errors]
    (d,) = errors
    assert d.file == config.resolve() or d.file == config, d.text()
    assert d.line is not None and d.line >= 3 and "is not valid JSON" in d.message
    assert "column" in d.message and "Namespace" not in d.text()
    out = esrunner("run", str(cropland), "--scratch", str(tmp_path / "scratch"))
    assert out.returncode == 2, out.stderr[-2000:]
    assert "config.json:" in out.stderr and "is not valid JSON" in out.stderr
    assert len(out.stderr.splitlines()) <= 3, out.stderr
    assert_scratch_untouched(tmp_path / "scratch")


@pytest.mark.parametrize(
    "name", ["olmoearth_run.yml", "olmoearth_run.json", "olmoearth_run_maize.yml"]
)
def test_a_run_config_spelled_otherwise_is_named_with_the_right_name(
    cropland: Path, name: str
) -> None:
    (cropland / "olmoearth_run.yaml").rename(cropland / name)
    meant = name.rsplit(".", 1)[0] + ".yaml"
    errors = _errors(cropland)
    assert len(errors) == 1 and errors[0].file.name == name, [d.text() for d in errors]
    assert f"did you mean {meant}?" in errors[0].message
    with pytest.raises(ProjectError) as e:
        ProjectFiles.from_dir(cropland)
    assert e.value.path.name == name and f"did you mean {meant}?" in str(e.value)


def test_a_variant_without_its_model_is_named(cropland: Path) -> None:
    (cropland / "olmoearth_run.yaml").rename(cropland / "olmoearth_run_maize.yaml")
    (cropland / "model.yaml").rename(cropland / "model_rice.yaml")
    errors = _errors(cropland)
    assert [d.file.name for d in errors] == ["olmoearth_run_maize.yaml"], [d.text() for d in errors]
    assert (
        "variant 'maize' has no model config: no model_maize.yaml and no model.yaml"
        in errors[0].message
    )
    with pytest.raises(ProjectError) as e:
        ProjectFiles.from_dir(cropland)
    assert "variant 'maize'" in str(e.value) and "model_maize.yaml" in str(e.value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["features"].__setitem__(0, [r["features"][0]]),
        lambda r: r.__setitem__("features", {"all": r["features"]}),
        lambda r: r["features"][0]["geometry"].__setitem__(
            "coordinates", {"c": r["features"][0]["geometry"]["coordinates"]}
        ),
    ],
    ids=["feature in a list", "features in an object", "coordinates in an object"],
)
def test_a_request_error_quotes_the_key_not_the_document(cropland: Path, mutate) -> None:
    path = cropland / "prediction_request_geometry.geojson"
    request = json.loads(path.read_text())
    mutate(request)
    path.write_text(json.dumps(request, indent=1))
    errors = _errors(cropland)
    assert errors and all(d.file == path or d.file.name == path.name for d in errors)
    for d in errors:
        assert d.key and d.key.startswith(("features", "type")), d.text()
        assert len(d.message) < 120 and "1.099208" not in d.message, d.message
