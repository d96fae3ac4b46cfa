"""The 12 reference project dirs of allenai/olmoearth_projects validate with only true findings.

The fixtures (:mod:`tests.reference_projects`) mirror what each real dir does that a check
can trip on; the model variants of ``kenya_lulc_croptype`` and ``mozambique_lulc`` are
chosen by ``--run-config``/``--model-config`` on every front door.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from esbuild.cli import cli as esbuild_cli
from esbuild.image import plan_build
from esbuild.validate import validate_project
from rslp.cli import cli as esrunner_cli
from rslp.errors import ProjectError
from rslp.project import ProjectFiles
from rslp.variants import choose, list_variants

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_projects import EXPECTED, PROJECTS, write_project  # noqa: E402


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("olmoearth_run_data")
    for name in PROJECTS:
        write_project(root, name)
    return root


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_reference_dir_validates_with_only_its_true_findings(projects: Path, name: str) -> None:
    found = validate_project(projects / name)
    serious = [d for d in found if d.severity in ("error", "warning")]
    got = set()
    for d in serious:
        match = [e for e in EXPECTED[name] if e[0] == d.file.name and e[1] == d.severity]
        words = next((e[2] for e in match if e[2] in d.message), None)
        assert words is not None, f"unexpected finding: {d.text()}"
        got.add((d.file.name, d.severity, words))
    assert got == EXPECTED[name]
    # what used to fail these dirs is gone, and said as a notice where it matters
    assert not any("annotation" in d.message and d.severity != "notice" for d in found)
    if PROJECTS[name].request == "platform":
        assert any("platform request body" in d.message for d in found)


def test_several_variants_and_no_default_name_them_and_the_flag(projects: Path) -> None:
    kenya = projects / "kenya_lulc_croptype"
    with pytest.raises(ProjectError) as e:
        ProjectFiles.from_dir(kenya, request=kenya / "model_maize.yaml")
    text = str(e.value)
    assert "olmoearth_run_cropland.yaml + model_cropland.yaml" in text
    assert "olmoearth_run_maize.yaml + model_maize.yaml" in text
    assert "--run-config olmoearth_run_cropland.yaml" in text

    request = projects / "awf" / "prediction_request_geometry.geojson"
    result = CliRunner().invoke(esrunner_cli, ["plan", str(kenya), "--request", str(request)])
    assert result.exit_code == 2
    assert "2 model variants and no default" in result.output
    assert "--run-config" in result.output


def test_run_config_chooses_its_model_config_and_scratch(projects: Path) -> None:
    kenya = projects / "kenya_lulc_croptype"
    request = projects / "awf" / "prediction_request_geometry.geojson"
    files = ProjectFiles.from_dir(kenya, request, run_config="olmoearth_run_maize.yaml")
    assert files.model_yaml.name == "model_maize.yaml"
    assert files.partition_strategies_yaml.name == "olmoearth_run_maize.yaml"
    assert files.variant == "maize"
    # a variant without its own model config uses model.yaml; no flag: the default
    moz = projects / "mozambique_lulc"
    assert [v.name for v in list_variants(moz)] == ["", "croptype"]
    crop = choose(moz, "olmoearth_run_croptype.yaml")
    assert (crop.model_config.name, crop.name) == ("model.yaml", "croptype")
    assert choose(moz).run_config is not None and choose(moz).run_config.name == (
        "olmoearth_run.yaml"
    )
    # a name that is not a run config, or a file that is not there
    with pytest.raises(ProjectError, match="is not a run config name"):
        choose(moz, "model.yaml")
    with pytest.raises(ProjectError, match="--run-config does not exist"):
        choose(moz, "olmoearth_run_nope.yaml")


def test_validate_checks_every_variant_or_the_one_chosen(projects: Path) -> None:
    kenya = projects / "kenya_lulc_croptype"
    every = {d.file.name for d in validate_project(kenya) if d.severity == "warning"}
    assert {"model_cropland.yaml", "model_maize.yaml"} <= every
    one = validate_project(kenya, run_config="olmoearth_run_maize.yaml")
    assert "model_cropland.yaml" not in {d.file.name for d in one}
    assert "model_maize.yaml" in {d.file.name for d in one}
    result = CliRunner().invoke(
        esbuild_cli, ["validate", str(kenya), "--run-config", "olmoearth_run_nope.yaml"]
    )
    assert result.exit_code == 1
    assert "--run-config does not exist" in result.output


def test_each_variant_gets_its_own_image(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    kenya = write_project(repo / "data", "kenya_lulc_croptype")
    tags = {}
    for name in ("cropland", "maize"):
        plan = plan_build(
            kenya,
            registry="r.example",
            namespace="team",
            variant=choose(kenya, f"olmoearth_run_{name}.yaml"),
        )
        assert plan.build_args["RUN_CONFIG"] == f"olmoearth_run_{name}.yaml"
        assert plan.build_args["MODEL_CONFIG"] == f"model_{name}.yaml"
        assert plan.build_args["VARIANT"] == name
        tags[name] = plan.tags
        assert all(t.startswith(f"r.example/team/kenya_lulc_croptype-{name}:") for t in plan.tags)
    assert not set(tags["cropland"]) & set(tags["maize"])
    digests = {
        n: plan_build(kenya, variant=choose(kenya, f"olmoearth_run_{n}.yaml")).build_args[
            "CONFIG_DIGEST"
        ]
        for n in ("cropland", "maize")
    }
    assert digests["cropland"] != digests["maize"]
