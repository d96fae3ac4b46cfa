"""LocalFiles raster_item_specs are checked before a run: files, band counts, band names."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from rslp.checks import check_project
from tests.conftest import REPO

PROJECT = REPO / "data" / "olmoearth-cropland"


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    shutil.copytree(PROJECT, d, ignore=shutil.ignore_patterns("scratch*", "scripts", "truth"))
    return d


def _specs(d: Path, edit: Callable[[list, dict], None]) -> None:
    cfg = json.loads((d / "dataset.json").read_text())
    edit(cfg["layers"]["sentinel2"]["data_source"]["init_args"]["raster_item_specs"], cfg)
    (d / "dataset.json").write_text(json.dumps(cfg, indent=1))


def test_the_realistic_project_specs_pass(tmp_path: Path) -> None:
    found = check_project(_copy(tmp_path))
    assert [d.text() for d in found if d.rule == "local_files"] == []


def test_a_missing_file_a_band_count_and_an_unnamed_band_are_found(tmp_path: Path) -> None:
    d = _copy(tmp_path)

    def edit(specs: list, cfg: dict) -> None:
        specs[0]["fnames"] = ["s2_missing.tif"]
        specs[1]["bands"][0] = specs[1]["bands"][0][:11]
        cfg["layers"]["sentinel2"]["band_sets"][0]["bands"][0] = "B02_typo"

    _specs(d, edit)
    found = [x for x in check_project(d) if x.rule == "local_files"]
    text = "\n".join(x.text() for x in found)
    assert "file 's2_missing.tif' is not in src_dir" in text
    assert "raster_item_specs[0].fnames[0]" in text
    assert "11 band name(s) for 's2_20200812.tif', which has 12 band(s)" in text
    assert "['B02_typo'] are named by no raster_item_specs entry" in text
    assert all(x.severity in ("error", "warning") for x in found) and len(found) == 3
