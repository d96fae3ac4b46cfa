"""Reading nested documents (parsed JSON/YAML) whose shape is not guaranteed."""

from __future__ import annotations

from typing import Any


def dig(node: Any, *keys: str | int) -> Any:
    """``node[k1][k2]...`` where each step exists and has the right type, else None.

    For files the schema describes only at the top (model.yaml), so a rule copes with any
    JSON/YAML type in any position.
    """
    for k in keys:
        if isinstance(node, dict) and isinstance(k, str):
            node = node.get(k)
        elif isinstance(node, list) and isinstance(k, int) and -len(node) <= k < len(node):
            node = node[k]
        else:
            return None
    return node
