"""What the plan step writes: window lines, each partition's summary, and the plan's map."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rslp.cli import cli
from rslp.common.partitioners import WindowSpec
from rslp.project import ProjectFiles
from rslp.runner.context import RunContext
from rslp.runner.partition import PlanWriter
from rslp.runner.preview import preview_plan, window_lonlat, windows_lonlat
from rslp.runner.scratch import Scratch
from tests.conftest import DEMO

T0 = datetime(2024, 6, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 30, 12, 30, tzinfo=UTC)

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    windows=st.lists(
        st.tuples(
            names,
            st.sampled_from(["EPSG:32632", "EPSG:4326", 'odd"crs']),
            st.sampled_from([10, 10.0, 0.5, 1e-4]),
            st.tuples(
                *[st.integers(-(10**7), 10**7)] * 2, st.integers(1, 300), st.integers(1, 300)
            ),
            st.lists(names, min_size=1, max_size=3),
        ),
        max_size=20,
    )
)
def test_a_plan_line_is_the_window_json_byte_for_byte(windows: list, tmp_path_factory) -> None:
    specs = [
        WindowSpec(n, crs, res, (c, r, c + w, r + h), (T0, T1), fids)
        for n, crs, res, (c, r, w, h), fids in windows
    ]
    path = tmp_path_factory.mktemp("plan") / "p.jsonl"
    summary = PlanWriter().write(path, specs)
    expected = "".join(json.dumps(s.to_json(), separators=(",", ":")) + "\n" for s in specs)
    assert path.read_text() == expected
    area = sum(
        (s.bounds[2] - s.bounds[0]) * (s.bounds[3] - s.bounds[1]) * s.resolution**2 for s in specs
    )
    assert summary["area_km2"] == pytest.approx(area / 1e6)
    for crs, res, c0, r0, c1, r1 in summary["extents"]:
        mine = [s.bounds for s in specs if (s.crs, s.resolution) == (crs, res)]
        assert (c0, r0) == tuple(np.min(mine, axis=0)[:2]) and (c1, r1) == tuple(
            np.max(mine, axis=0)[2:]
        )
    if specs:
        assert (summary["start"], summary["end"]) == (T0.isoformat(), T1.isoformat())


def test_outlines_of_many_windows_equal_each_window_alone() -> None:
    specs = [
        WindowSpec(f"w{i}", crs, 10, (i * 64, -i * 64, i * 64 + 64, -i * 64 + 64), (T0, T1))
        for i, crs in enumerate(["EPSG:32632", "EPSG:32633", "EPSG:32632", "EPSG:3857"])
    ]
    together = windows_lonlat(specs)
    for spec, outline in zip(specs, together, strict=True):
        assert outline.equals_exact(window_lonlat(spec), 1e-12)
        assert len(outline.exterior.coords) == 17


def _ctx(scratch: Path) -> RunContext:
    return RunContext(files=ProjectFiles.from_dir(DEMO), scratch=Scratch.open(scratch))


def test_a_large_plan_lists_partitions_not_windows(tmp_path: Path) -> None:
    import shapely.geometry as sg

    listed = preview_plan(_ctx(tmp_path / "a"))
    assert listed.listed and listed.geojson.name == "windows.geojson"
    window_features = json.loads(listed.geojson.read_text())["features"]
    assert len(window_features) == listed.windows
    big = preview_plan(_ctx(tmp_path / "a"), max_listed=listed.windows - 1)
    assert not big.listed and big.geojson.name == "partitions.geojson"
    assert not listed.geojson.exists()  # not left stale beside the new listing
    feats = json.loads(big.geojson.read_text())["features"]
    assert [f["properties"]["partition"] for f in feats] == [p.id for p in big.partitions]
    assert sum(f["properties"]["windows"] for f in feats) == listed.windows
    outline = {f["properties"]["partition"]: sg.shape(f["geometry"]) for f in feats}
    for f in window_features:  # inside its partition's outline (to 1 m: edges are densified)
        assert outline[f["properties"]["partition"]].buffer(1e-5).contains(sg.shape(f["geometry"]))
    assert big.table() == listed.table()


def test_plan_cli_names_the_partitions_file_for_a_large_plan(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("rslp.runner.preview.MAX_LISTED_WINDOWS", 3)
    res = CliRunner().invoke(cli, ["plan", str(DEMO), "--scratch", str(tmp_path)])
    assert res.exit_code == 0, res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith("partitions: ")]
    assert line and "too many to list one by one" in line[0], res.output
    assert (tmp_path / "plan" / "partitions.geojson").exists()
