#!/usr/bin/env bash
# The one-command GPU check, run ON the lent GPU machine (the device tool), with the kit that
# scripts/device_kit.py built here carried along:
#
#   (here)    .venv/bin/python scripts/device_kit.py build
#   (device)  run(command="bash scripts/device-check.sh", carry=[".device-kit"], timeout_s=480)
#
# It unpacks the kit for the device's python3 (3.12, with torch and CUDA), then runs
# data/olmoearth-cropland end to end on the GPU (the model's own bfloat16 autocast), the same
# on the device's CPU (--device cpu), and bench.olmoearth's plain-rslearn baseline on the GPU;
# prints windows/s, the GPU memory peak and the COGs' agreement, and writes them as JSON to
# $OUT/device-check.json (the device tool brings $OUT back). Ends well inside 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${OUT:-/tmp/device-check-out}"
SITE="${DEVICE_SITE:-/tmp/esrunner-kit}"
mkdir -p "$OUT" "$SITE"
[ -f .device-kit/kit.tar.xz ] || { echo "no .device-kit/kit.tar.xz: build it first (scripts/device_kit.py build) and carry .device-kit" >&2; exit 2; }
echo "[device] unpacking the kit into $SITE"
tar -xJf .device-kit/kit.tar.xz -C "$SITE"
# The working tree first: the code checked is the tree carried now, even with a kit built
# from an older tree (the kit's own wheel of this package comes after it).
export PYTHONPATH="$PWD:$SITE" TMPDIR="${TMPDIR:-/tmp}"
"$PY" - "$OUT" <<'PY'
"""GPU vs CPU vs plain rslearn on the GPU, on data/olmoearth-cropland: windows/s, memory, agreement."""
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

out = Path(sys.argv[1])
project = Path("data/olmoearth-cropland")
result: dict = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "torch": torch.__version__}


def run(device: str, scratch: Path) -> dict:
    cmd = [sys.executable, "-m", "rslp.cli", "run", str(project), "--scratch", str(scratch),
           "--workers", "1", "--device", device]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"esrunner --device {device} failed:\n{proc.stderr[-3000:]}")
    windows = sum(1 for _ in (scratch / "dataset" / "windows").glob("*/*"))
    return {"seconds": secs, "windows": windows, "windows_per_s": windows / secs,
            "cog": str(scratch / "results" / "result.tif")}


def gpu_memory_mib() -> float:
    """GPU memory in use now, across processes (nvidia-smi), in MiB."""
    q = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True)
    return float(q.stdout.split()[0]) if q.returncode == 0 and q.stdout.strip() else 0.0


peak = [0.0]
done = threading.Event()


def sample() -> None:
    while not done.wait(0.2):
        peak[0] = max(peak[0], gpu_memory_mib())


with tempfile.TemporaryDirectory() as tmp:
    base = gpu_memory_mib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gpu = run("cuda", Path(tmp) / "gpu")
    done.set()
    result["gpu_memory_peak_mib"] = peak[0] - base
    cpu = run("cpu", Path(tmp) / "cpu")
    with rasterio.open(gpu["cog"]) as a, rasterio.open(cpu["cog"]) as b:
        x, y = a.read(1), b.read(1)
    moved = float(np.mean(x != y))
    result.update({"esrunner_gpu": gpu, "esrunner_cpu": cpu,
                   "gpu_vs_cpu_speed": cpu["seconds"] / gpu["seconds"],
                   "pixels_moved_share": moved})
    try:  # bench.olmoearth's baseline: plain rslearn CLI calls on the same windows (GPU: auto)
        from bench.runner import plain_rslearn
        secs, n = plain_rslearn(project, Path(tmp) / "plain", [])
        result["plain_rslearn_gpu"] = {"seconds": secs, "windows": n}
        result["esrunner_vs_plain_gpu"] = gpu["seconds"] / secs
    except Exception as e:  # reported, not hidden: the esrunner numbers stand alone
        result["plain_rslearn_gpu_error"] = f"{type(e).__name__}: {str(e)[-500:]}"
(out / "device-check.json").write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
PY
