"""Prediction writers for models with several heads.

rslearn's ``RslearnWriter`` writes one output (``selector`` picks a head of a multi-task
model). :class:`MultiFieldWriter` writes every head: a ``MultiTask`` gives one processed
output per task (a ``1 x H x W`` class map, or values), and the writer stacks them into
the output layer's bands in ``fields`` order (the unified format's field order), so one
layer holds every head and the legend's ``band_index`` N is field N. Vector heads' features
are merged into one feature per place with a property per field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rslearn.train.prediction_writer import RslearnWriter


class MultiFieldWriter(RslearnWriter):
    """Write each head of a multi-task model into one band of the output layer.

    Use it where a model's heads are the fields of one raster layer (the transpiled model
    config of an ``olmoearth_config.yaml`` does); with one head, ``RslearnWriter`` with a
    ``selector`` does the same.

    Args:
        output_layer: the raster layer written (a band per field).
        fields: the task names, in band order.
        kwargs: ``RslearnWriter``'s other arguments (``path``, ``merger``...).
    """

    def __init__(self, output_layer: str, fields: list[str], **kwargs: Any) -> None:
        super().__init__(output_layer=output_layer, **kwargs)
        if not fields:
            raise ValueError("fields is empty: give the task names in band order")
        self.fields = list(fields)

    def process_output(
        self, window: Any, crop_idx: int, num_crops: int, cur_bounds: Any, output: Any
    ) -> None:
        """Stack the heads' outputs (a dict by task) into bands, then write as usual."""
        if isinstance(output, dict):
            values = list(output.values())
            if values and all(isinstance(v, list) for v in values):
                output = merge_features(output, self.fields)
            else:
                output = stack_fields(output, self.fields)
        super().process_output(window, crop_idx, num_crops, cur_bounds, output)


def _require(output: dict[str, Any], fields: list[str]) -> None:
    """Raise ValueError naming the fields the model gave no output for."""
    missing = [f for f in fields if f not in output]
    if missing:
        raise ValueError(
            f"the model gave no output for field(s) {missing}; it has {sorted(output)}"
        )


def merge_features(output: dict[str, list[Any]], fields: list[str]) -> list[Any]:
    """Vector heads' features as one list: a feature per place, a property per field.

    Heads that give the same number of features (a classification head per window gives
    one) are zipped: the first head's geometry, every head's properties. Otherwise the
    features are listed one after another, each with its head's properties.

    Raises:
        ValueError: a field has no output.
    """
    _require(output, fields)
    lists = [output[f] for f in fields]
    if len({len(x) for x in lists}) != 1:
        return [feat for x in lists for feat in x]
    merged = []
    for group in zip(*lists, strict=True):
        props: dict[str, Any] = {}
        for feat in group:
            props.update(feat.properties or {})
        merged.append(type(group[0])(group[0].geometry, props))
    return merged


def stack_fields(output: dict[str, Any], fields: list[str]) -> np.ndarray:
    """The heads' outputs as one ``(fields, H, W)`` array, in ``fields`` order.

    Each head gives a ``1 x H x W`` (or ``H x W``) array or tensor; mixed dtypes become
    their common type (class ids and a regression's floats: float).

    Raises:
        ValueError: a field has no output.
    """
    _require(output, fields)
    bands = []
    for f in fields:
        a = output[f]
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        bands.append(a if a.ndim == 3 else a[None])
    dtype = np.result_type(*[b.dtype for b in bands])
    return np.concatenate([b.astype(dtype, copy=False) for b in bands], axis=0)
