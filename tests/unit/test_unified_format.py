"""The unified format (``olmoearth_config.yaml``): reading, checking and transpiling it.

The LCC file of allenai/olmoearth_projects (config_version 0.13.0, seven heads) and what
the reference runner transpiled it into are fixtures (tests/fixtures/unified/); this
runner's transpilation must equal the reference's after parsing, except where rslearn
0.1.19 has no such class or option (docs/formats.md lists each).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from esbuild.validate import validate_project
from rslp import formats
from rslp.errors import ProjectError
from rslp.formats.unified import problems_of
from rslp.formats.unified.transpile import transpile
from rslp.project import ProjectFiles
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "unified"
LCC = FIXTURES / "olmoearth_lcc"
ETHIOPIA = FIXTURES / "ethiopia_maize"
EXAMPLE = REPO / "data" / "olmoearth-change"


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def lcc() -> Any:
    cfg, problems = problems_of(_load(LCC / "olmoearth_config.yaml"))
    assert cfg is not None, problems
    assert [p for p in problems if p.severity == "error"] == []
    return transpile(cfg)


def test_dataset_config_equals_the_reference_after_parsing(lcc: Any) -> None:
    from rslearn.config.dataset import DatasetConfig

    ref = json.loads((LCC / "transpiled" / "dataset_config.json").read_text())
    want = DatasetConfig.model_validate(ref).model_dump(mode="json")
    got = DatasetConfig.model_validate(lcc.dataset).model_dump(mode="json")
    assert got == want
    # the reference's file is dumped with sorted keys; ours lists inputs first, as built
    assert list(lcc.dataset["layers"]) == [
        "sentinel2_l2a_lookbehind_0",
        "sentinel2_l2a_lookbehind_1",
        "labels",
        "output",
    ]
    # the two windows' frames: (16 + 4) x 90 d ending 90 d before; (6 + 7) x 7 d
    first = lcc.dataset["layers"]["sentinel2_l2a_lookbehind_0"]["data_source"]
    assert first["duration"] == f"{1800 * 86400:.1f}s"
    assert first["time_offset"] == f"{-1890 * 86400:.1f}s"


def test_legend_equals_the_reference(lcc: Any) -> None:
    ref = json.loads((LCC / "transpiled" / "inference_results_config.json").read_text())
    assert lcc.results == ref
    assert [f["band_index"] for f in lcc.results["classification_fields"]] == list(range(1, 8))


def test_model_config_equals_the_reference_but_for_listed_differences(lcc: Any) -> None:
    ref = _load(LCC / "transpiled" / "model.yaml")
    got = copy.deepcopy(lcc.model)
    rm, gm = ref["model"]["init_args"]["model"], got["model"]["init_args"]["model"]
    assert gm["class_path"] == rm["class_path"] == "rslearn.models.multitask.MultiTaskModel"
    assert gm["init_args"]["decoders"] == rm["init_args"]["decoders"]
    assert list(gm["init_args"]["decoders"]) == [
        "binary",
        "pre_change",
        "post_change",
        "src",
        "dst",
        "ts_start",
        "ts_end",
    ]
    r_enc = rm["init_args"]["encoder"][0]["init_args"]
    g_enc = gm["init_args"]["encoder"][0]["init_args"]
    # rslearn 0.1.19's OlmoEarth has no use_register_bottleneck_output (its behaviour is
    # the default off); autocast: the reference writes float32 on a CPU and bfloat16 on a
    # GPU, this runner writes bfloat16 and turns autocast off on a CPU itself.
    assert r_enc.pop("use_register_bottleneck_output") is False
    assert (r_enc.pop("autocast_dtype"), g_enc.pop("autocast_dtype")) == ("float32", "bfloat16")
    assert g_enc == r_enc
    # RasterInputLightningModule (olmoearth_run) -> rslearn's RslearnLightningModule
    assert ref["model"]["class_path"].endswith("RasterInputLightningModule")
    assert got["model"]["class_path"] == "rslearn.train.lightning_module.RslearnLightningModule"
    rd, gd = ref["data"]["init_args"], got["data"]["init_args"]
    assert gd["inputs"] == rd["inputs"]
    assert len(gd["inputs"]["sentinel2_l2a"]["layers"]) == 22
    assert gd["task"] == rd["task"]
    assert gd["default_config"] == rd["default_config"]
    assert gd["predict_config"] == rd["predict_config"]
    assert gd["batch_size"] == rd["batch_size"]
    assert (rd["path"], gd["path"]) == ("<dataset_path>", "${DATASET_PATH}")
    # The multi-head writer: olmoearth_run's MultiFieldInstrumentedWriter -> ours, same args
    (r_writer,) = [c for c in ref["trainer"]["callbacks"] if "multi_field" in c["class_path"]]
    (g_writer,) = got["trainer"]["callbacks"]
    assert g_writer["class_path"] == "rslp.common.writers.MultiFieldWriter"
    r_args, g_args = dict(r_writer["init_args"]), dict(g_writer["init_args"])
    assert (r_args.pop("path"), g_args.pop("path")) == ("<dataset_path>", "${DATASET_PATH}")
    assert g_args == r_args
    assert got["trainer"]["strategy"] == ref["trainer"]["strategy"]


def test_the_lcc_file_validates_with_notices_only(tmp_path: Path) -> None:
    project = tmp_path / "lcc"
    project.mkdir()
    shutil.copy(LCC / "olmoearth_config.yaml", project)
    assert formats.detect_format(project) == formats.UNIFIED
    found = validate_project(project)
    errors = [d.text() for d in found if d.severity == "error"]
    assert errors == []
    notices = " ".join(d.message for d in found if d.severity == "notice")
    assert "Hugging Face hub" in notices  # the hub encoder is not downloaded by a check
    assert "planetary_computer" in notices  # the network source's package


def test_earlier_forms_transpile(tmp_path: Path) -> None:
    cfg, problems = problems_of(_load(ETHIOPIA / "olmoearth_config.yaml"))
    assert cfg is not None, problems
    # training and labeled_data_prep are not used by a prediction: notices, not dropped
    assert sorted(p.key[0] for p in problems if p.severity == "notice") == [
        "labeled_data_prep",
        "training",
    ]
    t = transpile(cfg)
    layer = t.dataset["layers"]["sentinel2_l2a"]  # period: one layer, no offset
    assert "time_offset" not in layer["data_source"]
    assert layer["data_source"]["query_config"]["max_matches"] == 11
    decoder = t.model["model"]["init_args"]["model"]["init_args"]["decoders"]["maize_or_not"]
    assert decoder[0]["class_path"] == "rslearn.models.unet.UNetDecoder"
    assert decoder[0]["init_args"]["out_channels"] == 2
    enc = t.model["model"]["init_args"]["model"]["init_args"]["encoder"][0]["init_args"]
    assert enc["model_path"] == "${EXTRA_FILES_PATH}" and enc["embedding_size"] == 768
    post = t.run["postprocessing_strategies"]
    assert post["process_dataset"]["init_args"] == {"max_pixels_per_dimension": 10000}
    # the single lookbehind form and a point in time
    data = _load(EXAMPLE / "olmoearth_config.yaml")
    data["data"]["temporality"] = {
        "name": "framed_point_in_time",
        "lookbehind_observation": {"name": "sampled", "duration_days": 30, "num_samples": 2},
        "lookbehind_offset_days": 10,
    }
    cfg, _ = problems_of(data)
    assert cfg is not None
    src = transpile(cfg).dataset["layers"]["sentinel2_l2a_lookbehind"]["data_source"]
    assert src["time_offset"] == f"{-40 * 86400:.1f}s" and src["query_config"]["max_matches"] == 2
    data["data"]["temporality"] = {"name": "point_in_time", "observation_window_seconds": 3600}
    cfg, _ = problems_of(data)
    assert cfg is not None
    src = transpile(cfg).dataset["layers"]["sentinel2_l2a"]["data_source"]
    assert src["time_offset"] == "-1800.0s" and src["query_config"]["space_mode"] == "CONTAINS"


def _bad(change: Any) -> dict[str, Any]:
    data = _load(EXAMPLE / "olmoearth_config.yaml")
    change(data)
    return data


BAD = {
    "duplicate field": (
        lambda d: d["data"]["output"]["fields"].append(
            copy.deepcopy(d["data"]["output"]["fields"][0])
        ),
        "data.output",
        "field name 'before' is used twice",
    ),
    "task without a field": (
        lambda d: d["model"]["tasks"].__setitem__("extra", d["model"]["tasks"]["change"]),
        "model.tasks.extra",
        "task 'extra' has no output field",
    ),
    "colour out of range": (
        lambda d: d["data"]["output"]["fields"][2]["allowed_values"][1].__setitem__(
            "color", [256, 0, 0]
        ),
        "data.output.fields[2].allowed_values[1].color",
        "colour channels must be 0..255",
    ),
    "no config_version": (
        lambda d: d.pop("config_version"),
        "config_version",
        "config_version is missing",
    ),
    "unknown config_version": (
        lambda d: d.__setitem__("config_version", "1.0.0"),
        "config_version",
        "is not supported",
    ),
    "empty lookbehind list": (
        lambda d: d["data"]["temporality"].__setitem__("lookbehind_observations", []),
        "data.temporality.lookbehind_observations",
        "the list is empty",
    ),
    "unknown key": (
        lambda d: d["model"]["encoder"].__setitem__("patch_sise", 4),
        "model.encoder.patch_sise",
        "unknown key 'patch_sise'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_unified_configs_get_one_clear_error(case: str, tmp_path: Path) -> None:
    change, key, message = BAD[case]
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("checkpoint.ckpt"))
    data = _bad(change)
    (project / "olmoearth_config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    errors = [d for d in validate_project(project) if d.severity == "error"]
    assert len(errors) == 1, [d.text() for d in errors]
    (err,) = errors
    assert err.file.name == "olmoearth_config.yaml" and err.key == key and message in err.message
    assert err.line is not None
    # the run refuses it the same way, before anything is written
    with pytest.raises(ProjectError) as info:
        ProjectFiles.from_dir(project)
    assert message in info.value.message and info.value.path.name == "olmoearth_config.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "rslp.cli", "run", str(project), "--scratch", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s").exists()


def test_a_directory_with_two_formats_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("checkpoint.ckpt"))
    (project / formats.RUN_YAML).write_text("partition_strategies: {}\n")
    with pytest.raises(ProjectError, match="keep one format"):
        ProjectFiles.from_dir(project)


def test_the_reference_runners_own_package_is_named(tmp_path: Path) -> None:
    """The legacy LCC dir's data source is olmoearth_run's: the hint names its distribution."""
    from rslp.plugins import ClassPathError, load_class

    path = "olmoearth_run.runner.tools.rslearn_data_sources.olmoearth_datasets.sentinel2_l2a"
    with pytest.raises(ClassPathError) as info:
        load_class(f"{path}.Sentinel2L2A")
    hint = info.value.hint
    assert "'olmoearth-runner'" in hint and "cannot be installed beside" in hint
    assert "torch==2.7.1" in hint and "planetary_computer.Sentinel2" in hint


def test_convert_writes_the_files_a_run_uses(tmp_path: Path) -> None:
    from rslp.convert import convert

    out = tmp_path / "legacy"
    convert(EXAMPLE, "legacy", out)
    assert formats.detect_format(out) == formats.REFERENCE
    assert not (out / "olmoearth_config.yaml").exists()
    files = ProjectFiles.from_dir(EXAMPLE)
    assert json.loads((out / "dataset.json").read_text()) == json.loads(
        files.dataset_json.read_text()
    )
    assert yaml.safe_load((out / "model.yaml").read_text()) == yaml.safe_load(
        files.model_yaml.read_text()
    )
    found = validate_project(out)
    assert [d.text() for d in found if d.severity == "error"] == []
    with pytest.raises(ProjectError, match="only that way"):
        convert(out, "unified", tmp_path / "back")


def test_variants_of_a_unified_directory(tmp_path: Path) -> None:
    from rslp.variants import choose, list_variants

    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("checkpoint.ckpt"))
    other = _load(project / "olmoearth_config.yaml")
    other["input_preprocessing"]["predict"]["overlap_pixels"] = 4
    (project / "olmoearth_config_fast.yaml").write_text(yaml.safe_dump(other))
    names = [v.name for v in list_variants(project)]
    assert names == ["", "fast"]
    v = choose(project, "olmoearth_config_fast.yaml")
    assert v.name == "fast" and v.run_config == v.model_config
    fast = ProjectFiles.from_dir(project, run_config="olmoearth_config_fast.yaml")
    assert fast.variant == "fast" and fast.format == formats.UNIFIED
    model = yaml.safe_load(fast.model_yaml.read_text())
    assert model["data"]["init_args"]["predict_config"]["overlap_pixels"] == 4
    (project / "model.yaml").write_text("model: {}\n")
    with pytest.raises(ProjectError, match="--model-config does not apply"):
        choose(project, model_config="model.yaml")


def test_transpiled_files_are_written_again_where_missing(tmp_path: Path, monkeypatch) -> None:
    """A cluster node without the driver's cache transpiles the project again."""
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "driver"))
    files = ProjectFiles.from_dir(EXAMPLE)
    assert files.model_yaml.is_relative_to(tmp_path / "driver")
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "worker"))
    shutil.rmtree(tmp_path / "driver")
    again = files.transpiled()
    assert again.model_yaml.is_relative_to(tmp_path / "worker")
    assert again.model_yaml.read_text() == ProjectFiles.from_dir(EXAMPLE).model_yaml.read_text()


def test_the_json_schema_accepts_the_public_files_and_names_an_unknown_key() -> None:
    from jsonschema import Draft202012Validator

    from rslp.checks.schema import shipped

    v = Draft202012Validator(shipped("olmoearth_config.schema.json"))
    for path in (LCC, ETHIOPIA, EXAMPLE):
        assert list(v.iter_errors(_load(path / "olmoearth_config.yaml"))) == [], path
    bad = _load(EXAMPLE / "olmoearth_config.yaml")
    bad["data"]["modalities"]["sentinel2_l2a"]["space_mod"] = "mosaic"
    assert any("space_mod" in e.message for e in v.iter_errors(bad))


def test_transpiled_files_follow_the_bundle_they_depend_on(tmp_path: Path, monkeypatch) -> None:
    """Weights added to the encoder bundle later: new files, without random_initialization."""
    monkeypatch.setenv("ESRUNNER_NODE_DIR", str(tmp_path / "node"))
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("checkpoint.ckpt", "truth"))
    before = ProjectFiles.from_dir(project).model_yaml
    enc = ["model", "init_args", "model", "init_args", "encoder"]

    def encoder_args(path: Path) -> dict[str, Any]:
        node: Any = yaml.safe_load(path.read_text())
        for k in enc:
            node = node[k]
        return node[0]["init_args"]

    assert encoder_args(before)["random_initialization"] is True
    (project / "extra_model_files" / "weights.pth").write_bytes(b"weights")
    after = ProjectFiles.from_dir(project).model_yaml
    assert after != before and "random_initialization" not in encoder_args(after)
