"""A project is checked in its own environment: what requirements.txt adds counts.

The project is the demo plus a layer from rslearn's Planetary Computer Sentinel-2 source,
which needs the ``planetary_computer`` package: the base lacks it, the project's
requirements.txt adds it, so only the project's image can check that class path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SEED_SAMPLE, SEED_SAMPLE_ERRORS
from tests.docker.conftest import BASE_IMAGE, STATE, docker

pytestmark = pytest.mark.docker

ESBUILD = str(Path(sys.executable).with_name("esbuild"))
PC_SOURCE = "rslearn.data_sources.planetary_computer.Sentinel2"
REQUIREMENTS = (
    "# Planetary Computer Sentinel-2 (the base lacks these)\nplanetary_computer>=1.0\nscipy\n"
)


def esbuild(*args: str, timeout: int = 3000) -> subprocess.CompletedProcess:
    return subprocess.run([ESBUILD, *args], capture_output=True, text=True, timeout=timeout)


def set_source(project: Path, class_path: str) -> None:
    cfg = json.loads((project / "dataset.json").read_text())
    cfg["layers"]["sentinel2"] = {
        "type": "raster",
        "band_sets": [{"bands": ["B04", "B08"], "dtype": "uint16"}],
        "data_source": {
            "class_path": class_path,
            "init_args": {"harmonize": True, "sort_by": "eo:cloud_cover"},
            "ingest": False,
        },
    }
    (project / "dataset.json").write_text(json.dumps(cfg, indent=1) + "\n")


@pytest.fixture(scope="module")
def pc_project(build_repo: Path) -> Path:
    project = build_repo / "data" / "pcdemo"
    shutil.copytree(
        REPO / "data" / "demo", project, ignore=shutil.ignore_patterns("scratch", "scripts")
    )
    set_source(project, PC_SOURCE)
    (project / "requirements.txt").write_text(REQUIREMENTS)
    # Re-locked from the demo's lock: its pins are kept, the new packages added.
    out = esbuild("lock", str(project), timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def pc_image(docker_env: dict[str, str], pc_project: Path) -> str:
    tag = "esrunner-test/pcdemo:ci"
    out = esbuild(
        "build", str(pc_project), "--wheelhouse", str(STATE / "wheelhouse"),
        "--base-image", BASE_IMAGE, "--tag", tag,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"tag: {tag}" in out.stdout
    return tag


def test_host_validate_gives_a_notice_not_an_error(pc_project: Path) -> None:
    out = esbuild("validate", str(pc_project), "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    found = json.loads(out.stdout)
    notices = [d for d in found if d["severity"] == "notice"]
    assert [d["key"] for d in notices] == ["layers.sentinel2.data_source.class_path"]
    assert "not checked here: needs the project's environment" in notices[0]["message"]
    assert "planetary-computer" in notices[0]["message"]
    assert not [d for d in found if d["severity"] == "error"]
    strict = esbuild("validate", str(pc_project), "--require-imports")
    assert strict.returncode == 1 and "No module named 'planetary_computer'" in strict.stdout


def test_validate_inside_the_image_passes(pc_image: str, pc_project: Path) -> None:
    out = esbuild("validate", str(pc_project), "--image", pc_image, "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == []  # no notice: the image could check everything


def test_a_typo_in_that_class_path_fails_inside_the_image_with_file_and_line(
    pc_image: str, pc_project: Path, tmp_path: Path
) -> None:
    typo = tmp_path / "pcdemo"
    shutil.copytree(pc_project, typo)
    set_source(typo, PC_SOURCE + "x")
    # The host tells too, although the module does not import here: its source has no
    # such class (the first pass reads sources); inside the image the import says the same.
    for where in ([], ["--image", pc_image]):
        out = esbuild("validate", str(typo), *where, "--format", "json")
        assert out.returncode == 1, out.stdout + out.stderr
        errors = [d for d in json.loads(out.stdout) if d["severity"] == "error"]
        assert len(errors) == 1, errors
        err = errors[0]
        assert err["key"] == "layers.sentinel2.data_source.class_path"
        assert Path(err["file"]).resolve() == (typo / "dataset.json").resolve()
        lines = (typo / "dataset.json").read_text().splitlines()
        assert err["line"] and PC_SOURCE + "x" in lines[err["line"] - 1]
        assert "has no class 'Sentinel2x'" in err["message"]


def test_build_refuses_to_tag_an_image_whose_project_fails_inside_it(
    pc_image: str, pc_project: Path
) -> None:
    # A class of a package only the image has: the host cannot tell (a notice), the image can.
    set_source(pc_project, "planetary_computer.NoSuchSource")
    try:
        tag = "esrunner-test/pcdemo:typo"
        out = esbuild(
            "build", str(pc_project), "--wheelhouse", str(STATE / "wheelhouse"),
            "--base-image", BASE_IMAGE, "--tag", tag,
        )  # fmt: skip
    finally:
        set_source(pc_project, PC_SOURCE)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "does not pass inside its image" in out.stderr and "not tagged" in out.stderr
    assert "dataset.json" in out.stderr and "has no class 'NoSuchSource'" in out.stderr
    assert docker("image", "inspect", tag, check=False).returncode != 0


def test_seed_sample_inside_an_image_with_its_requirement(pc_image: str, tmp_path: Path) -> None:
    # The seed's sample needs what pcdemo's image holds (the base + planetary_computer):
    # inside it, only the sample's real problems remain, and no notice.
    sample = tmp_path / "sample"
    shutil.copytree(SEED_SAMPLE, sample)
    (sample / "requirements.txt").write_text(REQUIREMENTS)
    out = esbuild("validate", str(sample), "--image", pc_image, "--format", "json")
    assert out.returncode == 1, out.stdout + out.stderr
    found = json.loads(out.stdout)
    assert not [d for d in found if d["severity"] == "notice"]
    assert not [d for d in found if "planetary_computer" in d["message"]]
    errors = {(Path(d["file"]).name, d["rule"]) for d in found if d["severity"] == "error"}
    assert errors == SEED_SAMPLE_ERRORS, errors


def test_a_project_image_shares_the_base_layer_and_adds_only_its_packages(
    pc_image: str, demo_image: dict
) -> None:
    def layers(ref: str) -> list[str]:
        out = docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout
        return list(json.loads(out))

    from esbuild.image import BASE_PARTS, PARTS, base_ref

    # Both go on the one base image, named by the digest of what it is made of: the OS and
    # the base venv's layers (gigabytes), one copy for both.
    base = layers(base_ref(REPO, BASE_IMAGE))
    demo, pc = layers(demo_image["tag"]), layers(pc_image)
    assert len(base) == 1 + len(BASE_PARTS)
    assert demo[: len(base)] == base and pc[: len(base)] == base
    fmt = "{{.CreatedBy}}|{{.Size}}"
    hist = docker("history", "--no-trunc", "--human=false", "--format", fmt, pc_image).stdout
    sizes = [(c, int(n)) for c, n in (ln.rsplit("|", 1) for ln in hist.splitlines())]
    installs = [n for c, n in reversed(sizes) if "pip install" in c]  # in build order
    assert len(installs) == len(PARTS), sizes
    size = dict(zip(PARTS, installs, strict=True))
    # The CUDA runtime and torch are gigabytes each, every other base pin under 2 GB.
    assert size["cuda"] > 2e9 and size["torch"] > 1e9 and 1e8 < size["base"] < 2e9
    # planetary-computer and scipy with their trees only: a small layer over a base of GBs
    assert 0 < size["project"] < 300e6
