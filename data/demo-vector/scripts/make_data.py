"""Write the vector demo's imagery, truth and request (deterministic).

A 512 x 512 pixel (5.12 km) synthetic scene in UTM 32N with three lakes, made with the
raster demo's generator (``data/demo/scripts/synthetic.py``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT.parent / "demo" / "scripts"))
from synthetic import Lake, lakes_geojson, render, write_geotiff  # noqa: E402

ORIGIN = (490000.0, 5080000.0)
SIZE = 512
LAKES = [
    Lake("lago_uno", 491500.0, 5078600.0, 800.0, 500.0, 15.0),
    Lake("lago_due", 493600.0, 5076700.0, 600.0, 700.0, -20.0),
    Lake("lago_tre", 491200.0, 5076000.0, 450.0, 300.0, 70.0),
]


def main() -> None:
    """Write imagery/scene.tif and truth/lakes.geojson."""
    image, _ = render(ORIGIN, SIZE, LAKES, seed=11)
    write_geotiff(PROJECT / "imagery" / "scene.tif", image, ORIGIN)
    (PROJECT / "truth").mkdir(exist_ok=True)
    (PROJECT / "truth" / "lakes.geojson").write_text(
        json.dumps(lakes_geojson(LAKES), indent=1) + "\n"
    )
    print("wrote imagery/scene.tif and truth/lakes.geojson")


if __name__ == "__main__":
    main()
