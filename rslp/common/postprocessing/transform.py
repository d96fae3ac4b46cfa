"""Value transforms applied to result rasters (the reference runner's ``value_transform``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio


def valid_mask(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where ``array`` holds data: not ``nodata`` (NaN compares as NaN; None: everywhere)."""
    if nodata is None:
        return np.ones(array.shape, dtype=bool)
    if np.isnan(nodata):
        return ~np.isnan(array)
    return np.asarray(array != nodata)


TRANSFORM_TAG = "value_transform"
OUTPUT_DTYPES = ("uint8", "int16", "int32", "float32")


@dataclass(frozen=True)
class LinearTransform:
    """``scale * value + offset`` on valid pixels, optionally cast to ``output_dtype``.

    Integer outputs are rounded and clipped to the type's range; nodata stays nodata (the
    reference runner transforms nodata pixels too: here they keep meaning "no data").
    """

    scale: float = 1.0
    offset: float = 0.0
    output_dtype: str | None = None

    @staticmethod
    def parse(value: dict[str, Any]) -> LinearTransform:
        """Read ``{type: linear, scale, offset, output_dtype}``; ValueError says what is wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"value_transform must be a mapping, got {value!r}")
        unknown = sorted(set(value) - {"type", "scale", "offset", "output_dtype"})
        if unknown:
            raise ValueError(f"value_transform has unknown key(s) {unknown}")
        if value.get("type", "linear") != "linear":
            raise ValueError(f"value_transform type must be 'linear', got {value.get('type')!r}")
        dtype = value.get("output_dtype")
        if dtype is not None and dtype not in OUTPUT_DTYPES:
            raise ValueError(f"output_dtype must be one of {list(OUTPUT_DTYPES)}, got {dtype!r}")
        nums = {}
        for k, default in (("scale", 1.0), ("offset", 0.0)):
            v = value.get(k, default)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ValueError(f"value_transform {k} must be a finite number, got {v!r}")
            nums[k] = float(v)
        return LinearTransform(nums["scale"], nums["offset"], dtype)

    @property
    def tag(self) -> str:
        """The GeoTIFF tag recording that this transform was applied."""
        return json.dumps(
            {"scale": self.scale, "offset": self.offset, "output_dtype": self.output_dtype}
        )

    def applied_to(self, inputs: list[Path]) -> bool:
        """Whether every input already carries this transform's tag."""
        for p in inputs:
            with rasterio.open(p) as src:
                if src.tags().get(TRANSFORM_TAG) != self.tag:
                    return False
        return bool(inputs)

    def nodata_after(self, nodata: float | None) -> float | None:
        """The nodata value in the output type.

        Raises:
            ValueError: when the output type cannot hold it.
        """
        if nodata is None or self.output_dtype is None:
            return nodata
        dtype = np.dtype(self.output_dtype)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            if np.isnan(nodata) or not info.min <= nodata <= info.max:
                raise ValueError(
                    f"nodata {nodata} does not fit output_dtype {self.output_dtype}; set "
                    "nodata_value to a value it holds"
                )
        return nodata

    def apply(self, array: np.ndarray, nodata: float | None) -> np.ndarray:
        """The transformed array (nodata pixels kept as nodata)."""
        valid = valid_mask(array, nodata)
        out = array.astype(np.float64) * self.scale + self.offset
        dtype = np.dtype(self.output_dtype) if self.output_dtype else array.dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        fill = self.nodata_after(nodata)
        if fill is not None:
            out = np.where(valid, out, fill)
        return out.astype(dtype)
