"""The seed's sample project lives in the repository; it must stay the seed's, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SEED_SAMPLE, SEED_SAMPLE_ORIGIN


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_seed_sample_is_in_the_repository() -> None:
    files = _tree(SEED_SAMPLE)
    assert {
        "dataset.json",
        "model.yaml",
        "checkpoint.ckpt",
        "partition_strategies.yaml",
        "postprocessing_strategies.yaml",
        "prediction_requests/test-request1.geojson",
    } <= set(files)
    assert files["checkpoint.ckpt"] == b""  # the seed's sample ships an empty checkpoint


@pytest.mark.skipif(
    not SEED_SAMPLE_ORIGIN.exists(),
    reason=f"only checks outside material: {SEED_SAMPLE_ORIGIN} is not beside this checkout",
)
def test_seed_sample_equals_the_seed() -> None:
    assert _tree(SEED_SAMPLE) == _tree(SEED_SAMPLE_ORIGIN)
