"""Image builds: full, config-only rebuild, and a second project on the shared base layer.

Starts the private engine (scripts/docker-engine.sh), empties the build cache, builds the
demo image offline from the wheelhouse, changes one config file and builds again; then
builds ``data/olmoearth-cropland`` (which adds one package to the base) and reports its
time and the bytes of its own layers against the demo's; then ``demo-vector`` (adds
nothing). Finally all three go through ``esbuild publish`` to a real registry on loopback
(Debian's docker-registry): the registry's storage after each push against the bytes of
three images that share nothing (the design before the shared base), and the bytes a node
that holds the base pulls for another project (its manifest's layers not in the base's).

Run: .venv/bin/python -m bench.image   (as root)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "scripts" / "docker-engine.sh"
STATE = Path(os.environ.get("ESB_DOCKER_ROOT", "/var/lib/esbuild-docker"))
BASE = "esrunner-base:bookworm-py311"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def build(project: Path, tag: str) -> float:
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    t0 = time.perf_counter()
    sh(
        esbuild,
        "build",
        str(project),
        "--wheelhouse",
        str(STATE / "wheelhouse"),
        "--base-image",
        BASE,
        "--tag",
        tag,
    )
    return time.perf_counter() - t0


def main() -> None:
    sh("bash", str(ENGINE), "install")
    os.environ.update(
        DOCKER_HOST=sh("bash", str(ENGINE), "start").splitlines()[-1],
        ESBUILD_DOCKER="/usr/bin/docker",
    )
    try:
        measure()
    finally:
        for step in ("prune", "stop"):  # both, whatever the other did
            subprocess.run(["bash", str(ENGINE), step], capture_output=True)


def measure() -> None:
    """Time a full build (empty cache) and a rebuild after a config-only change."""
    sh("bash", str(ENGINE), "base-image")
    with tempfile.TemporaryDirectory() as t:
        repo = Path(t)
        for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
            shutil.copy(REPO / name, repo / name)
        for name in ("rslp", "requirements"):
            shutil.copytree(REPO / name, repo / name)
        shutil.copytree(
            REPO / "data" / "demo", repo / "data" / "demo", ignore=shutil.ignore_patterns("scratch")
        )
        shutil.copytree(
            REPO / "data" / "demo-vector",
            repo / "data" / "demo-vector",
            ignore=shutil.ignore_patterns("scratch*"),
        )
        shutil.copytree(
            REPO / "data" / "olmoearth-cropland",
            repo / "data" / "olmoearth-cropland",
            ignore=shutil.ignore_patterns("scratch*", "scripts"),
        )
        project = repo / "data" / "demo"
        second = repo / "data" / "olmoearth-cropland"
        # Wheels are downloaded once (not timed); the build cache is emptied.
        from esbuild.image import fill_wheelhouse

        for p in (project, second):
            fill_wheelhouse(repo, p / "requirements.lock", STATE / "wheelhouse")
        tags = ("esrunner-bench/demo:full", "esrunner-bench/demo:rebuild", "esrunner-bench/oc:1")
        for tag in tags:
            subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True)
        bases = sh("/usr/bin/docker", "images", "esrunner-env", "--format", "{{.ID}}").split()
        for image_id in set(bases):  # a full build builds the base environment too
            subprocess.run(["/usr/bin/docker", "rmi", "-f", image_id], capture_output=True)
        sh("/usr/bin/docker", "builder", "prune", "-af")
        full = build(project, tags[0])
        cfg = project / "postprocessing_strategies.yaml"
        cfg.write_text(cfg.read_text() + "# config-only change\n")
        rebuild = build(project, tags[1])
        fill_wheelhouse(repo, second / "requirements.lock", STATE / "wheelhouse")
        other = build(second, tags[2])
        demo_bytes, oc_own = own_layer_bytes(tags[0], tags[2])
        third = repo / "data" / "demo-vector"
        fill_wheelhouse(repo, third / "requirements.lock", STATE / "wheelhouse")
        vector = build(third, "esrunner-bench/dv:1")
        stored = registry_bytes(
            repo,
            [(project, tags[0]), (second, tags[2]), (third, "esrunner-bench/dv:1")],
        )
    print("demo image (esbuild build, offline wheelhouse):")
    print(f"  full build                 {full:.1f} s")
    print(f"  rebuild after config edit  {rebuild:.1f} s")
    print(f"  ratio rebuild/full = {rebuild / full:.3f}")
    print("a second project on the same base (olmoearth-cropland: + olmoearth-pretrain-minimal):")
    print(f"  build {other:.1f} s ({other / full:.3f} x the first image's full build)")
    print(
        f"  its own layers {oc_own / 1e6:.1f} MB over the shared ones; the demo image "
        f"{demo_bytes / 1e9:.2f} GB: three such projects store "
        f"{(demo_bytes + 2 * oc_own) / 1e9:.2f} GB, not {3 * demo_bytes / 1e9:.2f} GB"
    )
    print(f"a third project (demo-vector, adds nothing): build {vector:.1f} s")
    print("through a registry on loopback (esbuild publish, compressed bytes):")
    for name, total, own, after in stored["pushes"]:
        print(
            f"  {name:<20} image {total / 1e9:.2f} GB, its own layers {own / 1e6:.1f} MB; "
            f"registry storage after its push {after / 1e9:.2f} GB"
        )
    alone = sum(t for _, t, _, _ in stored["pushes"])
    final = stored["pushes"][-1][3]
    print(
        f"  three projects: registry {final / 1e9:.2f} GB vs {alone / 1e9:.2f} GB for three "
        f"images sharing nothing ({final / alone:.2f} x)"
    )
    print(
        f"  a node holding the base pulls {stored['node_pull'] / 1e6:.1f} MB for olmoearth-cropland"
    )


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _layers(ref: str) -> dict[str, int]:
    import json

    out = sh("/usr/bin/docker", "manifest", "inspect", "--insecure", ref)
    return {layer["digest"]: int(layer["size"]) for layer in json.loads(out)["layers"]}


def registry_bytes(repo: Path, images: list[tuple[Path, str]]) -> dict:
    """Publish each image to a loopback registry; storage and layer bytes per push."""
    from esbuild.image import BASE_REPO

    port = "5077"
    registry = sh("bash", str(ENGINE), "registry-start", port).splitlines()[-1]
    storage = STATE / f"registry-{port}"
    esbuild = str(Path(sys.executable).with_name("esbuild"))
    pushes = []
    try:
        base_layers: dict[str, int] = {}
        for project, tag in images:
            ref = f"{registry}/bench/{project.name}:1"
            out = sh(esbuild, "publish", str(project), "--image", tag, "--tag", ref)
            base = [ln.split()[1] for ln in out.splitlines() if ln.startswith("base: ")][0]
            base_layers = base_layers or _layers(base)
            layers = _layers(ref)
            own = sum(n for d, n in layers.items() if d not in base_layers)
            pushes.append((project.name, sum(layers.values()), own, _du(storage)))
            assert BASE_REPO in base
        node_pull = pushes[1][2]  # olmoearth-cropland over the base a node holds
    finally:
        subprocess.run(["bash", str(ENGINE), "registry-stop", port], capture_output=True)
    return {"pushes": pushes, "node_pull": node_pull}


def own_layer_bytes(first: str, second: str) -> tuple[int, int]:
    """(all bytes of ``first``, bytes of ``second``'s layers above the shared base venv)."""

    def rows(ref: str) -> list[tuple[str, int]]:
        fmt = "{{.CreatedBy}}|{{.Size}}"
        out = sh("/usr/bin/docker", "history", "--no-trunc", "--human=false", "--format", fmt, ref)
        return [(c, int(n)) for c, n in (ln.rsplit("|", 1) for ln in out.splitlines())]

    above = 0
    for created, size in rows(second):  # newest first, down to the base venv's last layer
        if "pip check" in created:
            break
        above += size
    return sum(n for _, n in rows(first)), above


if __name__ == "__main__":
    main()
