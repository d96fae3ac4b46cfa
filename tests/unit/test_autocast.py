"""Half-precision autocast is turned off where the model runs on a CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rslp.runner.inference import cpu_autocast


class Encoder:
    """Stands for rslearn's OlmoEarth/Galileo encoders: bfloat16 autocast by default."""

    def __init__(self, size: int = 1, autocast_dtype: str | None = "bfloat16") -> None:
        self.autocast_dtype = autocast_dtype


def _config(accelerator: str, **encoder_args: object) -> dict:
    enc = {"class_path": f"{__name__}.Encoder"}
    if encoder_args:
        enc["init_args"] = dict(encoder_args)
    return {
        "model": {
            "class_path": "rslearn.train.lightning_module.RslearnLightningModule",
            "init_args": {"model": {"class_path": "x.Y", "init_args": {"encoder": [enc]}}},
        },
        "trainer": {"accelerator": accelerator},
    }


def test_the_default_and_explicit_half_dtypes_are_turned_off_on_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "model.init_args.model.init_args.encoder[0].init_args.autocast_dtype"
    for args in ({}, {"autocast_dtype": "bfloat16", "size": 2}, {"autocast_dtype": "float16"}):
        cfg = _config("cpu", **args)
        with caplog.at_level(logging.WARNING):
            assert cpu_autocast(cfg, Path("/p/model.yaml")) == [key]
        enc = cfg["model"]["init_args"]["model"]["init_args"]["encoder"][0]
        assert enc["init_args"]["autocast_dtype"] is None
        assert enc["init_args"].get("size") == args.get("size")  # other arguments kept
    warned = [r.getMessage() for r in caplog.records if "autocast" in r.getMessage()]
    assert len(warned) == 1  # once per model.yaml and key
    assert warned[0].startswith(f"/p/model.yaml: {key} is bfloat16, which does not run on a CPU")


def test_float32_and_gpus_are_left_alone() -> None:
    cfg = _config("cpu", autocast_dtype=None)
    assert cpu_autocast(cfg, Path("m.yaml")) == []
    cfg = _config("gpu")
    assert cpu_autocast(cfg, Path("m.yaml")) == []
    assert "init_args" not in cfg["model"]["init_args"]["model"]["init_args"]["encoder"][0]
