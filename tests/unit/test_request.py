from __future__ import annotations

from pathlib import Path

import pytest

from rslp.errors import ProjectError
from rslp.request import load_request
from tests.conftest import polygon_feature, write_request

SQ = [(8.70, 46.00), (8.71, 46.00), (8.71, 46.01), (8.70, 46.01)]


def test_loads_features_with_times(tmp_path: Path) -> None:
    p = write_request(tmp_path / "r.geojson", [polygon_feature(SQ), polygon_feature(SQ, id="b")])
    fs = load_request(p)
    assert len(fs) == 2
    assert fs[0].time_range[0].tzinfo is not None
    assert fs[1].id == "b"
    assert fs[0].id.startswith("f0-")
    assert load_request(p)[0].id == fs[0].id


def test_oe_times_and_point_in_time(tmp_path: Path) -> None:
    f = polygon_feature(
        SQ, oe_start_time="2024-09-15T00:00:00Z", oe_end_time="2024-09-15T00:00:00Z"
    )
    del f["properties"]["es_start_time"], f["properties"]["es_end_time"]
    (feat,) = load_request(write_request(tmp_path / "r.geojson", [f]))
    assert feat.time_range[0] == feat.time_range[1]


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({"es_start_time": None}, "es_start_time"),
        ({"es_end_time": "yesterday"}, "not an ISO 8601 time"),
        ({"es_start_time": "2024-07-01", "es_end_time": "2024-06-01"}, "reversed"),
    ],
)
def test_bad_times_name_the_feature(tmp_path: Path, props: dict, needle: str) -> None:
    good = polygon_feature(SQ)
    bad = polygon_feature(SQ)
    bad["properties"].update(props)
    bad["properties"] = {k: v for k, v in bad["properties"].items() if v is not None}
    p = write_request(tmp_path / "r.geojson", [good, bad])
    with pytest.raises(ProjectError) as e:
        load_request(p)
    assert "features[1]" in str(e.value) and needle in str(e.value)
    assert str(p) in str(e.value)


def test_out_of_range_and_duplicate_ids(tmp_path: Path) -> None:
    p = write_request(tmp_path / "r.geojson", [polygon_feature([(190, 0), (191, 0), (191, 1)])])
    with pytest.raises(ProjectError, match="out of lon/lat range"):
        load_request(p)
    p = write_request(
        tmp_path / "r.geojson", [polygon_feature(SQ, id="a"), polygon_feature(SQ, id="a")]
    )
    p.write_text(p.read_text().replace('"properties": {"id": "a", ', '"id": "a", "properties": {'))
    with pytest.raises(ProjectError, match="duplicate feature id"):
        load_request(p)
