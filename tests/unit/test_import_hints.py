"""A class that does not import names the distribution to add to requirements.txt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rslp.checks import check_project
from rslp.plugins import ClassPathError, distribution_for, load_class
from tests.conftest import DEMO


@pytest.mark.parametrize(
    ("class_path", "hint"),
    [
        (
            "planetary_computer.Thing",
            "add 'planetary-computer' to requirements.txt (it provides module "
            "'planetary_computer')",
        ),
        (
            "satlaspretrain_models.model.Encoder",
            "add 'satlaspretrain-models' to requirements.txt",
        ),
        ("rslp.helios.model.Helios", "'rslp' is installed but has no module 'rslp.helios'"),
        ("no_such_pkg_zz.Model", "add the package that provides module 'no_such_pkg_zz'"),
        ("rslearn.models.NoSuchModel", "fix the class path (module.Class)"),
    ],
)
def test_hints_name_the_distribution(class_path: str, hint: str) -> None:
    with pytest.raises(ClassPathError) as err:
        load_class(class_path)
    assert hint in err.value.hint


def test_installed_metadata_names_the_distribution_first() -> None:
    assert distribution_for("yaml") == "PyYAML"  # installed here: from its metadata
    assert distribution_for("sklearn.linear_model") == "scikit-learn"  # from the table


def test_validate_names_the_package_for_a_data_source(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "__pycache__"))
    ds = json.loads((project / "dataset.json").read_text())
    ds["layers"]["image"]["data_source"] = {
        "class_path": "rslearn.data_sources.planetary_computer.Sentinel2",
        "init_args": {},
    }
    (project / "dataset.json").write_text(json.dumps(ds))
    errors = [str(d) for d in check_project(project) if d.severity == "error"]
    assert any(
        "dataset.json" in e and "add 'planetary-computer' to requirements.txt" in e for e in errors
    ), errors
