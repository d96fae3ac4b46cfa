"""Does a checkpoint fit a model: the first mismatching parameter, in words.

Used by ``esbuild validate --deep`` and by the inference step when Lightning refuses to
load a checkpoint, so both name the same parameter and shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def load_state_dict(path: Path) -> tuple[dict[str, Any], str | None]:
    """(the weights of a checkpoint file, or an error message)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        return {}, f"checkpoint does not load: {type(e).__name__}: {e}"
    weights = state.get("state_dict", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        return {}, "checkpoint holds no state_dict"
    return weights, None


def mismatch(model: Mapping[str, Any], weights: Mapping[str, Any]) -> str | None:
    """How ``weights`` do not fit ``model``'s state dict, or None when they fit.

    A shape mismatch is named first (parameter, checkpoint shape, model shape), then
    parameters the model has and the checkpoint lacks, then the reverse.
    """

    def shape(v: Any) -> tuple[int, ...] | None:
        return tuple(v.shape) if hasattr(v, "shape") else None

    shapes = [
        (k, shape(v), shape(model[k]))
        for k, v in weights.items()
        if k in model and shape(v) != shape(model[k])
    ]
    missing = [k for k in model if k not in weights]
    unexpected = [k for k in weights if k not in model]
    problems = []
    if shapes:
        k, have, want = shapes[0]
        more = f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""
        problems.append(
            f"parameter {k!r} has shape {list(have or ())} in the checkpoint, "
            f"{list(want or ())} in the model{more}"
        )
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(f"parameter {missing[0]!r} is missing from the checkpoint{more}")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        problems.append(f"the checkpoint has parameter {unexpected[0]!r} the model lacks{more}")
    return "; ".join(problems) or None
