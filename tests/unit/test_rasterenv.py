"""rasterio builds its AWS session from the environment once, not per raster call."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
from rasterio.features import geometry_mask
from rasterio.transform import from_origin

from rslp.rasterenv import raster_env


def test_raster_calls_reuse_one_session_per_set_of_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasterio import session as rio_session

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    built: list[object] = []
    real = rio_session.AWSSession.__init__

    def counting(self: object, *args: object, **kwargs: object) -> None:
        built.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(rio_session.AWSSession, "__init__", counting)
    tr = from_origin(0, 10, 1, 1)
    with raster_env():
        masks = [geometry_mask([sg.box(0, 0, 5, 5)], (10, 10), tr) for _ in range(20)]
        with rasterio.Env() as env:  # what rasterize and friends open inside
            first = env.session
    assert masks[0].sum() == 75 and all(np.array_equal(m, masks[0]) for m in masks)
    assert len(built) <= 1  # built once for these keys (or once before this test)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-2")  # new credentials: a new session
    with raster_env(), rasterio.Env() as env:
        assert env.session is not first
    assert len(built) <= 2
