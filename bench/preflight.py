"""What failing first costs, and what it saves.

1. Plan bounds: the window count of a country-sized request (1.6 million km2, UTM zones
   31-33, 128 px windows at 10 m) estimated from bounds (what preflight does) vs counted by
   enumerating every window (what a run without the check would do first). Ratio and how
   close the upper bound is.
2. Preflight of the demo in a fresh process, after the imports a run makes anyway (rslearn,
   torch), vs the whole demo run (`esrunner run --workers 1`): the share of a run spent
   checking.
3. A broken postprocessing config: time until `esrunner run` exits, vs the same run with
   the error found only when postprocessing starts (the demo's dataset + inference time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import best_of
from bench.partition import UTM, country
from rslp.common.partitioners.grid import GridPartitioner
from rslp.common.partitioners.noop import NoopPartitioner

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"


def estimate() -> int:
    return GridPartitioner(128).estimate_windows([country()], UTM).windows


def enumerate_windows() -> int:
    part = NoopPartitioner().partition_request([country()])[0]
    return sum(1 for _ in GridPartitioner(128).partition_windows(part, UTM))


def timed(cmd: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, out.returncode


def main() -> None:
    t_est, n_est = best_of(estimate)
    t_enum, n_enum = best_of(enumerate_windows, repeat=1)
    print(f"country, 128 px windows: estimate {n_est:,} (upper bound) vs {n_enum:,} enumerated")
    print(f"  estimate {t_est:.4f} s, enumerate {t_enum:.2f} s, ratio = {t_est / t_enum:.5f}")
    print(f"  bound / actual = {n_est / n_enum:.2f}")

    py = sys.executable
    code = (
        "import time; from pathlib import Path; import rslp.runner.inference, rslp.runner.dataset;"
        "from rslp.project import ProjectFiles; from rslp.checks.preflight import preflight;"
        f"t0 = time.perf_counter(); preflight(ProjectFiles.from_dir(Path('{DEMO}')));"
        "print(time.perf_counter() - t0)"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True)
    t_check = float(out.stdout.split()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "demo"
        shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("scratch", "scripts"))
        run = [py, "-m", "rslp.cli", "run", str(project), "--workers", "1"]
        t_run, rc = timed([*run, "--scratch", str(Path(tmp) / "ok")])
        assert rc == 0
        print(f"demo: preflight after imports {t_check:.2f} s, whole run {t_run:.2f} s, "
              f"ratio = {t_check / t_run:.3f}")  # fmt: skip
        cfg = project / "postprocessing_strategies.yaml"
        cfg.write_text(cfg.read_text().replace("clip_to_request: true", "clip_to_requests: true"))
        t_bad, rc = timed([*run, "--scratch", str(Path(tmp) / "bad")])
        assert rc == 2
        late = [
            *run,
            "--scratch",
            str(Path(tmp) / "late"),
            "--steps",
            "partition,dataset,inference",
        ]
        t_late, _ = timed(late)
        print(f"broken postprocessing config: fails in {t_bad:.2f} s; found at postprocess it "
              f"would have cost at least {t_late:.2f} s (dataset + inference first), "
              f"ratio = {t_bad / t_late:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
