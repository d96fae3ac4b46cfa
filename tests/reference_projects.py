"""Fixtures that mirror the 12 ``olmoearth_run_data/`` dirs of allenai/olmoearth_projects.

Written here, not copied: each fixture has the traits of its real dir that a check can trip
on (how the encoder is loaded, variants, the request or its absence, a platform request
body, the writer's ``placeholder`` path, ``window_prep`` without annotations, unfilled
placeholders, the data sources and packages imported), on one small segmentation project
shape. As of the repository's 2026-03 history, each real dir with a ``requirements.txt``
naming ``planetary-computer`` and ``olmoearth-pretrain-minimal`` validates with exactly the
findings listed in :data:`EXPECTED` (checked by hand against the real dirs; see the test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

S2_BANDS = ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "B01", "B09"]
OLMOEARTH = "rslearn.models.olmoearth_pretrain.model.OlmoEarth"
TOOLS = "olmoearth_run.runner.tools"


@dataclass
class Traits:
    """What one real dir does that matters to a check.

    Attributes:
        encoder: ``model_id`` (from the hub), ``model_path`` (``${EXTRA_FILES_PATH}``),
            ``nested`` (a hub model inside SimpleTimeSeries) or ``placeholders`` (the
            sample's ``{CHECKPOINT_PATH}`` template, for an older OlmoEarth signature).
        request: ``plain``, ``platform`` (a platform request body), ``reversed`` (end
            before start) or None (no request in the dir).
        variants: run-config suffixes; ``[""]`` is ``olmoearth_run.yaml`` alone, a
            ``model_<v>.yaml`` is written per variant when ``own_models``.
        writer_path: the RslearnWriter's ``path``; None: no writer at all.
        window_prep: a ``window_prep`` section (fine-tuning config) without annotations.
        results_config: an ``inference_results_config``.
        dataset_copy: a dataset-like ``config.json`` in the dir (as some dirs have).
        s1: a Sentinel-1 layer too.
    """

    encoder: str = "model_id"
    request: str | None = "plain"
    variants: list[str] = field(default_factory=lambda: [""])
    own_models: bool = False
    writer_path: str | None = "${DATASET_PATH}"
    window_prep: bool = True
    results_config: bool = True
    dataset_copy: bool = False
    s1: bool = False


PROJECTS: dict[str, Traits] = {
    "awf": Traits(),
    "ecosystem_type_mapping": Traits(),
    "fields_of_the_world": Traits(request=None, writer_path="placeholder", window_prep=False),
    "forest_loss_driver": Traits(encoder="nested", request="platform", window_prep=False),
    "kenya_lulc_croptype": Traits(
        encoder="model_path",
        request=None,
        variants=["cropland", "maize"],
        own_models=True,
        writer_path="placeholder",
        dataset_copy=True,
    ),
    "lfmc": Traits(request=None, s1=True),
    "mangrove": Traits(request=None, window_prep=False),
    "mozambique_lulc": Traits(
        encoder="model_path",
        variants=["", "croptype"],
        writer_path="placeholder",
        dataset_copy=True,
    ),
    "nandi": Traits(request="reversed"),
    "sample": Traits(encoder="placeholders", writer_path=None, results_config=False),
    "satlas_solar_farm": Traits(writer_path="placeholder", window_prep=False),
    "togo_cropland": Traits(
        encoder="model_path", request=None, writer_path="placeholder", dataset_copy=True
    ),
}

# (file name, severity, words of the message) of every error and warning, per dir.
_WRITER = "RslearnWriter path 'placeholder' is replaced"
_NO_REQUEST = "no request here"
_BUNDLE = "cannot build the encoder"
EXPECTED: dict[str, set[tuple[str, str, str]]] = {
    "awf": set(),
    "ecosystem_type_mapping": set(),
    "fields_of_the_world": {
        ("model.yaml", "warning", _WRITER),
        ("prediction", "warning", _NO_REQUEST),
    },
    "forest_loss_driver": set(),
    "kenya_lulc_croptype": {
        ("model_cropland.yaml", "warning", _BUNDLE),
        ("model_maize.yaml", "warning", _BUNDLE),
        ("model_cropland.yaml", "warning", _WRITER),
        ("model_maize.yaml", "warning", _WRITER),
        ("prediction", "warning", _NO_REQUEST),
    },
    "lfmc": {("prediction", "warning", _NO_REQUEST)},
    "mangrove": {("prediction", "warning", _NO_REQUEST)},
    "mozambique_lulc": {("model.yaml", "warning", _BUNDLE), ("model.yaml", "warning", _WRITER)},
    "nandi": {("prediction_request_geometry.geojson", "error", "time range is reversed")},
    "sample": {
        ("model.yaml", "error", "unfilled placeholder {CHECKPOINT_PATH}"),
        ("model.yaml", "error", "unfilled placeholder {PATCH_SIZE}"),
        ("model.yaml", "error", "unfilled placeholder {ENCODER_EMBEDDING_SIZE}"),
        ("model.yaml", "error", "missing required argument(s) ['patch_size']"),
        ("model.yaml", "warning", "no rslearn.train.prediction_writer.RslearnWriter"),
        ("olmoearth_run.yaml", "error", "'inference_results_config' is a required property"),
    },
    "satlas_solar_farm": {("model.yaml", "warning", _WRITER)},
    "togo_cropland": {
        ("model.yaml", "warning", _BUNDLE),
        ("model.yaml", "warning", _WRITER),
        ("prediction", "warning", _NO_REQUEST),
    },
}


def _dataset(t: Traits) -> dict[str, Any]:
    source = {
        "class_path": "rslearn.data_sources.planetary_computer.Sentinel2",
        "ingest": False,
        "init_args": {"cache_dir": "cache/planetary_computer", "harmonize": True},
        "query_config": {
            "max_matches": 4,
            "min_matches": 4,
            "period_duration": "30d",
            "space_mode": "PER_PERIOD_MOSAIC",
        },
    }
    layers: dict[str, Any] = {
        "sentinel2": {
            "type": "raster",
            "band_sets": [{"bands": S2_BANDS, "dtype": "uint16"}],
            "data_source": source,
        },
        "label": {"type": "raster", "band_sets": [{"bands": ["category"], "dtype": "int32"}]},
        "output": {"type": "raster", "band_sets": [{"bands": ["output"], "dtype": "float32"}]},
    }
    if t.s1:
        layers["sentinel1"] = {
            "type": "raster",
            "band_sets": [{"bands": ["vv", "vh"], "dtype": "float32"}],
            "data_source": {
                **source,
                "class_path": "rslearn.data_sources.planetary_computer.Sentinel1",
                "init_args": {"cache_dir": "cache/planetary_computer"},
            },
        }
    return {"layers": layers}


def _encoder(t: Traits) -> dict[str, Any]:
    if t.encoder == "model_path":
        return {
            "class_path": OLMOEARTH,
            "init_args": {"model_path": "${EXTRA_FILES_PATH}", "patch_size": 4},
        }
    hub = {"class_path": OLMOEARTH, "init_args": {"model_id": "OLMOEARTH_V1_BASE", "patch_size": 4}}
    if t.encoder == "nested":
        return {
            "class_path": "rslearn.models.simple_time_series.SimpleTimeSeries",
            "init_args": {
                "encoder": hub,
                "image_channels": 48,
                "image_key": "sentinel2_l2a",
                "groups": [[0], [1]],
            },
        }
    return hub


def _model(t: Traits) -> dict[str, Any]:
    norm = {
        "class_path": "rslearn.models.olmoearth_pretrain.norm.OlmoEarthNormalize",
        "init_args": {"band_names": {"sentinel2_l2a": S2_BANDS}},
    }
    callbacks: list[dict[str, Any]] = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"save_last": True, "monitor": "val_loss", "mode": "min"},
        }
    ]
    if t.writer_path is not None:
        callbacks.append(
            {
                "class_path": "rslearn.train.prediction_writer.RslearnWriter",
                "init_args": {
                    "path": t.writer_path,
                    "output_layer": "${PREDICTION_OUTPUT_LAYER}",
                    "selector": ["segment"],
                    "merger": {
                        "class_path": "rslearn.train.prediction_writer.RasterMerger",
                        "init_args": {"padding": 2},
                    },
                },
            }
        )
    return {
        "model": {
            "class_path": "rslearn.train.lightning_module.RslearnLightningModule",
            "init_args": {
                "model": {
                    "class_path": "rslearn.models.multitask.MultiTaskModel",
                    "init_args": {
                        "encoder": [_encoder(t)],
                        "decoders": {
                            "segment": [
                                {
                                    "class_path": "rslearn.models.upsample.Upsample",
                                    "init_args": {"scale_factor": 4},
                                },
                                {
                                    "class_path": "rslearn.models.conv.Conv",
                                    "init_args": {
                                        "in_channels": 768,
                                        "out_channels": 3,
                                        "kernel_size": 1,
                                        "activation": {"class_path": "torch.nn.Identity"},
                                    },
                                },
                                {
                                    "class_path": "rslearn.models.pick_features.PickFeatures",
                                    "init_args": {"indexes": [0]},
                                },
                                {"class_path": "rslearn.train.tasks.segmentation.SegmentationHead"},
                            ]
                        },
                    },
                },
                "lr": 0.0001,
            },
        },
        "data": {
            "class_path": "rslearn.train.data_module.RslearnDataModule",
            "init_args": {
                "path": "${DATASET_PATH}",
                "inputs": {
                    "sentinel2_l2a": {
                        "data_type": "raster",
                        "layers": ["sentinel2"],
                        "bands": S2_BANDS,
                        "passthrough": True,
                        "dtype": "FLOAT32",
                        "load_all_item_groups": True,
                        "load_all_layers": True,
                    },
                    "label": {
                        "data_type": "raster",
                        "layers": ["label"],
                        "bands": ["category"],
                        "is_target": True,
                        "dtype": "INT32",
                    },
                },
                "task": {
                    "class_path": "rslearn.train.tasks.multi_task.MultiTask",
                    "init_args": {
                        "tasks": {
                            "segment": {
                                "class_path": "rslearn.train.tasks.segmentation.SegmentationTask",
                                "init_args": {"num_classes": 3, "zero_is_invalid": True},
                            }
                        },
                        "input_mapping": {"segment": {"label": "targets"}},
                    },
                },
                "batch_size": 8,
                "num_workers": "${NUM_WORKERS}",
                "default_config": {"transforms": [norm]},
                "predict_config": {
                    "load_all_patches": True,
                    "patch_size": 16,
                    "overlap_ratio": 0.25,
                    "skip_targets": True,
                    "transforms": [norm],
                },
            },
        },
        "trainer": {
            "max_epochs": 100,
            "default_root_dir": "${TRAINER_DATA_PATH}",
            "callbacks": callbacks,
        },
    }


# The sample's model.yaml: a template for an older OlmoEarth (patch_size in forward_kwargs).
SAMPLE_MODEL = """\
model:
  class_path: rslearn.train.lightning_module.RslearnLightningModule
  init_args:
    model:
      class_path: rslearn.models.multitask.MultiTaskModel
      init_args:
        encoder:
          - class_path: rslearn.models.olmoearth_pretrain.model.OlmoEarth
            init_args:
              checkpoint_path: "{CHECKPOINT_PATH}"
              selector: ["encoder"]
              forward_kwargs:
                patch_size: {PATCH_SIZE}
        decoders:
          crop_type:
            - class_path: rslearn.models.pooling_decoder.PoolingDecoder
              init_args:
                in_channels: {ENCODER_EMBEDDING_SIZE}
                out_channels: 3
            - class_path: rslearn.train.tasks.classification.ClassificationHead
data:
  class_path: rslearn.train.data_module.RslearnDataModule
  init_args:
    path: ${DATASET_PATH}
    inputs:
      sentinel2_l2a:
        data_type: raster
        layers: ["sentinel2"]
        bands: [B02, B03, B04, B08, B05, B06, B07, B8A, B11, B12, B01, B09]
        passthrough: true
        dtype: FLOAT32
        load_all_item_groups: true
        load_all_layers: true
    task:
      class_path: rslearn.train.tasks.multi_task.MultiTask
      init_args:
        tasks:
          crop_type:
            class_path: rslearn.train.tasks.classification.ClassificationTask
            init_args:
              property_name: category
              classes: [a, b, c]
        input_mapping:
          crop_type: {}
    batch_size: 8
trainer:
  max_epochs: 10
"""


def _run(t: Traits) -> dict[str, Any]:
    grid = f"{TOOLS}.partitioners.grid_partitioner.GridPartitioner"
    run: dict[str, Any] = {
        "partition_strategies": {
            "partition_request_geometry": {"class_path": grid, "init_args": {"grid_size": 0.25}},
            "prepare_window_geometries": {
                "class_path": grid,
                "init_args": {
                    "grid_size": 1024,
                    "output_projection": {
                        "class_path": "rslearn.utils.geometry.Projection",
                        "init_args": {"crs": "EPSG:3857", "x_resolution": 10, "y_resolution": -10},
                    },
                    "use_utm": True,
                },
            },
        },
        "postprocessing_strategies": {
            "process_dataset": {
                "class_path": f"{TOOLS}.postprocessors.combine_geotiff.CombineGeotiff",
                "init_args": {"nodata_value": 255},
            },
            "process_partition": {
                "class_path": f"{TOOLS}.postprocessors.combine_geotiff.CombineGeotiff",
                "init_args": {"nodata_value": 255},
            },
            "process_window": {"class_path": f"{TOOLS}.postprocessors.noop_raster.NoopRaster"},
        },
    }
    if t.results_config:
        run["inference_results_config"] = {
            "data_type": "RASTER",
            "classification_fields": [
                {
                    "property_name": "segment",
                    "band_index": 1,
                    "allowed_values": [
                        {"value": 1, "label": "other", "color": [136, 33, 233]},
                        {"value": 2, "label": "crop", "color": [124, 67, 18]},
                    ],
                }
            ],
        }
    if t.window_prep:
        run["window_prep"] = {
            "sampler": {"class_path": f"{TOOLS}.samplers.noop_sampler.NoopSampler"},
            "labeled_window_preparer": {
                "class_path": f"{TOOLS}.labeled_window_preparers."
                "point_to_raster_window_preparer.PointToRasterWindowPreparer",
                "init_args": {
                    "window_buffer": 31,
                    "window_resolution": 10.0,
                    "dtype": "INT32",
                    "nodata_value": 255,
                },
            },
            "data_splitter": {
                "class_path": f"{TOOLS}.data_splitters.spatial_data_splitter.SpatialDataSplitter",
                "init_args": {
                    "train_prop": 0.75,
                    "val_prop": 0.25,
                    "test_prop": 0.0,
                    "grid_size": 128,
                },
            },
            "label_layer": "label",
            "group_name": "spatial_split",
            "split_property": "split",
        }
    return run


def _request(kind: str) -> dict[str, Any]:
    start, end = "2023-01-01T00:00:00Z", "2023-12-31T00:00:00Z"
    if kind == "reversed":
        start, end = "2023-09-01T00:00:00Z", "2022-09-01T00:00:00Z"
    ring = [[1.10, 8.60], [1.10, 8.62], [1.12, 8.62], [1.12, 8.60], [1.10, 8.60]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"oe_start_time": start, "oe_end_time": end},
            }
        ],
    }
    if kind == "platform":
        return {"geometry": collection, "model_pipeline_id": "0000", "workflow_type": "PREDICTION"}
    return collection


def write_project(root: Path, name: str) -> Path:
    """Write the fixture of one real dir under ``root``; returns its directory."""
    t = PROJECTS[name]
    d = root / name
    d.mkdir(parents=True)
    (d / "requirements.txt").write_text("planetary-computer\nolmoearth-pretrain-minimal\n")
    dataset = _dataset(t)
    (d / "dataset.json").write_text(json.dumps(dataset, indent=2))
    if t.dataset_copy:  # a dataset config named config.json, not an encoder bundle
        (d / "config.json").write_text(json.dumps(dataset, indent=2))
    for v in t.variants:
        run_name = f"olmoearth_run_{v}.yaml" if v else "olmoearth_run.yaml"
        (d / run_name).write_text(yaml.safe_dump(_run(t), sort_keys=False))
        model_name = f"model_{v}.yaml" if v and t.own_models else "model.yaml"
        text = SAMPLE_MODEL if t.encoder == "placeholders" else None
        (d / model_name).write_text(text or yaml.safe_dump(_model(t), sort_keys=False))
    if t.request is not None:
        (d / "prediction_request_geometry.geojson").write_text(
            json.dumps(_request(t.request), indent=2)
        )
    return d
