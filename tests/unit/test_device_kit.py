"""The device kit's set: traced from a real prediction of the realistic example, minus what
the GPU machine's image holds; optional imports left out with their reason."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_the_kit_carries_what_a_prediction_imports_and_the_device_lacks() -> None:
    out = subprocess.run(
        [sys.executable, "scripts/device_kit.py", "plan"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    carried_line = next(ln for ln in out.stdout.splitlines() if ln.startswith("carried ("))
    carried = {item.split("==")[0].lower() for item in carried_line.split(": ", 1)[1].split(", ")}
    # what a prediction imports that the image lacks: the geo stack, rslearn and its imports
    for name in ("rslearn", "rasterio", "shapely", "pyproj", "fiona", "wandb", "jsonargparse"):
        assert name in carried, carried
    assert "olmoearth-pretrain-minimal" in carried or "olmoearth_pretrain_minimal" in carried
    assert "rslearn-esrunner" in carried  # this package, as a wheel
    # what the image has is not carried
    assert not carried & {"torch", "lightning", "numpy", "torchvision", "pillow", "pyyaml"}
    # an optional import is left out, and the reason is given
    assert "boto3" not in carried
    left = [ln for ln in out.stdout.splitlines() if ln.startswith("left out: boto3: ")]
    assert left and "rasterio.session" in left[0], out.stdout
