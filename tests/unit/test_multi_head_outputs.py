"""Every head of a multi-head model written: the writer's bands and the files of each field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from rslp.common.postprocessing import CombineGeotiff, OutputLayer, WindowResult
from rslp.common.postprocessing.legend import Legend
from rslp.common.writers import MultiFieldWriter, merge_features, stack_fields
from rslp.config import InferenceResultsConfig

RESULTS = InferenceResultsConfig.model_validate(
    {
        "data_type": "RASTER",
        "classification_fields": [
            {
                "property_name": "cover",
                "band_index": 1,
                "allowed_values": [
                    {"value": 1, "label": "water", "color": [0, 0, 255]},
                    {"value": 2, "label": "trees", "color": [0, 128, 0]},
                ],
            },
            {
                "property_name": "change",
                "band_index": 2,
                "allowed_values": [
                    {"value": 0, "label": "none", "color": [0, 0, 0, 0]},
                    {"value": 1, "label": "change", "color": [255, 0, 0]},
                ],
            },
        ],
        "regression_fields": [
            {"property_name": "height", "band_index": 3, "min_value": 0, "max_value": 40}
        ],
    }
)


def test_fields_of_a_legend_are_in_band_order() -> None:
    fields = Legend.fields_of(RESULTS)
    assert [name for name, _ in fields] == ["cover", "change", "height"]
    assert fields[1][1].rgba_of()[1] == (255, 0, 0, 255)
    assert fields[2][1].value_range == (0.0, 40.0)


def _window(name: str, col0: int, values: list[float], size: int = 16) -> WindowResult:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    raster = np.stack([np.full((size, size), v, dtype=np.float32) for v in values])
    return WindowResult(
        partition_id="p",
        name=name,
        crs="EPSG:32632",
        resolution=10.0,
        bounds=(col0, -510000, col0 + size, -510000 + size),
        time_range=(t, t),
        feature_ids=["f"],
        raster=raster,
    )


def test_every_field_gets_its_own_cog_preview_and_legend_entry(tmp_path: Path) -> None:
    """Mixed dtypes: the shared COG is float32 (a regression head), each class head's own
    COG an integer class map with its colour table, the regression head's float32."""
    layer = OutputLayer(
        "output",
        "raster",
        ["cover", "change", "height"],
        "float32",
        float("nan"),
        legend=Legend.from_results_config(RESULTS),
        fields=Legend.fields_of(RESULTS),
    )
    stage = CombineGeotiff()
    a = stage.process_window(_window("a", 47000, [1, 0, 12.5]), layer, tmp_path / "w")[0]
    b = stage.process_window(_window("b", 47016, [2, 1, 30.0]), layer, tmp_path / "w")[0]
    part = stage.process_partition([a, b], layer, tmp_path / "p", "p")
    out = stage.process_dataset(part, layer, tmp_path / "r")
    names = sorted(p.name for p in out)
    assert names == [
        "legend.json",
        "result.tif",
        "result_change.png",
        "result_change.tif",
        "result_cover.png",
        "result_cover.tif",
        "result_height.png",
        "result_height.tif",
    ]
    with rasterio.open(tmp_path / "r" / "result.tif") as src:
        assert src.count == 3 and src.descriptions == ("cover", "change", "height")
        assert src.dtypes[0] == "float32"
        assert json.loads(src.tags()["fields"]) == ["cover", "change", "height"]
    with rasterio.open(tmp_path / "r" / "result_cover.tif") as src:
        assert src.count == 1 and src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.colormap(1)[2] == (0, 128, 0, 255)
        arr = src.read(1)
        assert (arr[:, :16] == 1).all() and (arr[:, 16:] == 2).all()
    with rasterio.open(tmp_path / "r" / "result_change.tif") as src:
        assert src.dtypes[0] == "uint8" and src.colormap(1)[1] == (255, 0, 0, 255)
        assert (src.read(1)[:, :16] == 0).all()  # class 0 is a class, not nodata
    with rasterio.open(tmp_path / "r" / "result_height.tif") as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.read(1)[0, 20] == pytest.approx(30.0)
    legend = json.loads((tmp_path / "r" / "legend.json").read_text())["bands"]
    assert [e["field"] for e in legend] == ["cover", "change", "height"]
    assert legend[0]["classes"][0] == {"value": 1, "label": "water", "color": [0, 0, 255, 255]}
    assert legend[2]["value_range"] == [0.0, 40.0] and legend[2]["nodata"] is None
    assert legend[0]["nodata"] == 255 and legend[0]["dtype"] == "uint8"


def test_the_writer_stacks_heads_in_field_order() -> None:
    """The heads' outputs (a dict by task) become the bands, in ``fields`` order."""
    stacked = stack_fields(
        {"a": np.full((1, 4, 4), 3, np.uint8), "b": torch.full((4, 4), 7)}, ["b", "a"]
    )
    assert stacked.shape == (2, 4, 4)
    assert (stacked[0] == 7).all() and (stacked[1] == 3).all()
    mixed = stack_fields(
        {"a": np.ones((1, 2, 2), np.uint8), "h": np.full((1, 2, 2), 0.5)}, ["a", "h"]
    )
    assert mixed.dtype == np.float64 and mixed[1, 0, 0] == 0.5
    with pytest.raises(ValueError, match="no output for field"):
        stack_fields({"a": np.zeros((1, 4, 4))}, ["a", "b"])
    with pytest.raises(ValueError, match="fields is empty"):
        MultiFieldWriter(output_layer="output", fields=[])


def test_vector_heads_become_one_feature_with_a_property_per_field() -> None:
    import shapely
    from rasterio.crs import CRS
    from rslearn.utils.feature import Feature
    from rslearn.utils.geometry import Projection, STGeometry

    proj = Projection(CRS.from_epsg(32632), 10, -10)
    geom = STGeometry(proj, shapely.box(0, 0, 4, 4), None)
    merged = merge_features(
        {
            "crop": [Feature(geom, {"crop": "maize"})],
            "yield": [Feature(geom, {"yield": 3.5})],
        },
        ["crop", "yield"],
    )
    assert len(merged) == 1 and merged[0].properties == {"crop": "maize", "yield": 3.5}
    assert merged[0].geometry is geom
    uneven = merge_features(
        {"a": [Feature(geom, {"a": 1}), Feature(geom, {"a": 2})], "b": [Feature(geom, {"b": 0})]},
        ["a", "b"],
    )
    assert [f.properties for f in uneven] == [{"a": 1}, {"a": 2}, {"b": 0}]
