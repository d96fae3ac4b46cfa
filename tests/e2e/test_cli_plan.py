"""esrunner plan: see partitions and windows before spending anything."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from rslp.cli import cli as main
from tests.conftest import DEMO, polygon_feature, write_request


def test_plan_on_the_demo(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["plan", str(DEMO), "--scratch", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "north-lakes" in res.output and "total" in res.output
    total = [ln for ln in res.output.splitlines() if ln.startswith("total")][0].split()
    assert int(total[1]) == 45
    gj = json.loads((tmp_path / "plan" / "windows.geojson").read_text())
    assert len(gj["features"]) == 45
    lon, lat = gj["features"][0]["geometry"]["coordinates"][0][0]
    assert 8 < lon < 9 and 45 < lat < 47
    with Image.open(tmp_path / "plan" / "preview.png") as img:
        assert img.size[0] > 100 and img.size[1] > 100
    assert not (tmp_path / "dataset").exists()  # nothing downloaded or built


def test_plan_on_a_multi_zone_request(demo_copy: Path, tmp_path: Path) -> None:
    # Features either side of 6E (UTM zones 31 and 32), one straddling it.
    sq = [(5.90, 46.00), (5.95, 46.00), (5.95, 46.03), (5.90, 46.03)]
    east = [(6.05, 46.00), (6.10, 46.00), (6.10, 46.03), (6.05, 46.03)]
    straddle = [(5.98, 46.05), (6.03, 46.05), (6.03, 46.08), (5.98, 46.08)]
    req = write_request(
        tmp_path / "multi.geojson",
        [
            polygon_feature(sq, id="west"),
            polygon_feature(east, id="east"),
            polygon_feature(straddle, id="mid"),
        ],
    )
    res = CliRunner().invoke(
        main, ["plan", str(demo_copy), "--request", str(req), "--scratch", str(tmp_path / "s")]
    )
    assert res.exit_code == 0, res.output
    crs = {
        f["properties"]["crs"]
        for f in json.loads((tmp_path / "s" / "plan" / "windows.geojson").read_text())["features"]
    }
    assert crs == {"EPSG:32631", "EPSG:32632"}


def test_plan_reports_bad_strategies_with_exit_2(demo_copy: Path, tmp_path: Path) -> None:
    (demo_copy / "partition_strategies.yaml").write_text("strategy_large: {class_path: x.Y}\n")
    res = CliRunner().invoke(main, ["plan", str(demo_copy), "--scratch", str(tmp_path)])
    assert res.exit_code == 2
    assert "partition_strategies.yaml" in res.output and "strategy_small" in res.output
