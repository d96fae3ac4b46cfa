"""The device kit: what a prediction needs on the lent GPU machine that its image lacks.

    .venv/bin/python scripts/device_kit.py plan      # trace, resolve, print (no download)
    .venv/bin/python scripts/device_kit.py build     # + download, pack, check the budget

1. **Trace.** Run the realistic example (``data/olmoearth-cropland``) here with
   ``python -X importtime``: every module a prediction imports, mapped to the distributions
   that provide them (this package's own metadata).
2. **Resolve.** Drop what the device's image holds (``scripts/device/present.txt``, from
   the device tool's KINDS.md) and the modules that come with Python; what is left is
   carried, at the versions installed here. Imports a library makes inside ``try/except
   ImportError`` that the prediction does not need are listed in :data:`OPTIONAL` with the
   reason (``boto3`` for rasterio's S3 sessions): left out, and said so.
3. **Pack.** Download each one's wheel for the device (CPython 3.12, manylinux x86_64),
   build this package as a wheel, install them all into one directory for that Python
   (nothing runs: pip only unpacks), leave out the executables a prediction never runs
   (:data:`NOT_RUN`), and write ``.device-kit/kit.tar.xz`` plus ``manifest.json``.
4. **Budget.** The kit plus the tracked working tree must fit the 64 MiB that travel with
   a device call; the script says what it carries, what it left out and why, and fails when
   it does not fit.

``scripts/device-check.sh`` unpacks the kit on the device and runs the example there.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / ".device-kit"
EXAMPLE = REPO / "data" / "olmoearth-cropland"
PRESENT = REPO / "scripts" / "device" / "present.txt"
BUDGET = 64 * 1024 * 1024  # what travels with one device call, the working tree included
PY = ("3.12", "cp312")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
OWN = "rslearn-esrunner"

# Imported only inside try/except ImportError, and not needed for a prediction.
OPTIONAL = {
    "boto3": "rasterio.session imports it inside try/except ImportError: S3 sessions only",
    "botocore": "boto3's (see boto3)",
    "s3transfer": "boto3's (see boto3)",
    "jmespath": "boto3's (see boto3)",
}
# Files of carried packages that a prediction never runs (executables, not modules).
NOT_RUN = {
    "wandb/bin": "wandb's executables (wandb-core, wandb-symon, a parquet library they load): "
    "started by wandb.init, which a prediction never calls",
}


def norm(name: str) -> str:
    """A distribution name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def present() -> set[str]:
    """The distributions the device's image holds."""
    lines = PRESENT.read_text().splitlines()
    return {norm(ln) for ln in lines if ln.strip() and not ln.startswith("#")}


def trace(scratch: Path) -> set[str]:
    """Top-level modules a prediction of the example imports (``-X importtime``)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "rslp.cli", "run", str(EXAMPLE)]
    cmd += ["--scratch", str(scratch), "--workers", "1", "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"the example did not run: {out.stderr[-2000:]}")
    mods = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return mods


def resolve(modules: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(carried: distribution -> version, left out: distribution -> why)."""
    providers = md.packages_distributions()
    dists = {d for m in modules for d in providers.get(m, [])}
    have = present()
    carried, left = {}, {}
    for d in sorted(dists, key=norm):
        if norm(d) in have:
            left[d] = "the device's image has it"
        elif norm(d) in OPTIONAL:
            left[d] = OPTIONAL[norm(d)]
        else:
            carried[d] = md.version(d)
    return carried, left


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def _target_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PY[0], "--implementation", "cp"]
    args += ["--abi", PY[1]]
    for p in PLATFORMS:
        args += ["--platform", p]
    return args


def working_tree_bytes() -> int:
    """What a device call carries of the checkout: its tracked files."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    return sum((REPO / os.fsdecode(n)).stat().st_size for n in names if n)


def build(carried: dict[str, str], left: dict[str, str]) -> dict[str, object]:
    """Download, install for the device's Python, pack; returns the manifest."""
    shutil.rmtree(KIT, ignore_errors=True)
    KIT.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        wheels, site = Path(tmp) / "wheels", Path(tmp) / "site"
        others = [f"{d}=={v}" for d, v in carried.items() if norm(d) != OWN]
        _pip("download", "--quiet", "--no-deps", *_target_args(), "-d", str(wheels), *others)
        _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO))
        wheel_bytes = {w.name: w.stat().st_size for w in wheels.glob("*.whl")}
        names = [w.name.split("-")[0] for w in wheels.glob("*.whl")]
        _pip(
            "install", "--quiet", "--no-deps", "--no-index", "--find-links", str(wheels),
            "--ignore-requires-python",  # this package says 3.11 (its image); the device has 3.12
            *_target_args(), "--target", str(site), *names,
        )  # fmt: skip
        dropped = {}
        for rel, why in NOT_RUN.items():
            if (site / rel).exists():
                size = sum(p.stat().st_size for p in (site / rel).rglob("*") if p.is_file())
                shutil.rmtree(site / rel)
                dropped[rel] = f"{why} ({size / 1e6:.1f} MB)"
        with tarfile.open(KIT / "kit.tar.xz", "w:xz", preset=9) as tar:
            tar.add(site, arcname=".")
    kit = (KIT / "kit.tar.xz").stat().st_size
    tree = working_tree_bytes()
    manifest = {
        "python": PY[0],
        "platforms": list(PLATFORMS),
        "carried": carried,
        "wheels_bytes": wheel_bytes,
        "left_out": left,
        "files_left_out": dropped,
        "kit_bytes": kit,
        "working_tree_bytes": tree,
        "budget_bytes": BUDGET,
        "fits": kit + tree <= BUDGET,
    }
    (KIT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "plan"
    if mode not in ("plan", "build"):
        raise SystemExit("usage: device_kit.py plan|build")
    with tempfile.TemporaryDirectory() as tmp:
        carried, left = resolve(trace(Path(tmp) / "scratch"))
    print(f"carried ({len(carried)}): " + ", ".join(f"{d}=={v}" for d, v in carried.items()))
    for d, why in left.items():
        if why != "the device's image has it":
            print(f"left out: {d}: {why}")
    print(f"the device's image has: {sum(1 for w in left.values() if w.startswith('the device'))}")
    if mode == "plan":
        return
    m = build(carried, left)
    for rel, why in m["files_left_out"].items():  # type: ignore[attr-defined]
        print(f"left out: {rel}: {why}")
    kit, tree = int(m["kit_bytes"]), int(m["working_tree_bytes"])  # type: ignore[call-overload]
    print(
        f"kit {kit / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
        f"{(kit + tree) / 2**20:.1f} MiB of {BUDGET / 2**20:.0f} MiB: "
        + ("fits" if m["fits"] else "DOES NOT FIT")
    )
    print(f"kit: {KIT / 'kit.tar.xz'}; manifest: {KIT / 'manifest.json'}")
    if not m["fits"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
