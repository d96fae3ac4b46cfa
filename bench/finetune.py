"""What `esrunner finetune` costs on the demo, against rslearn's own fit on the same windows.

1. `esrunner finetune data/demo-finetune` end to end (fresh processes, as a user runs it),
   with each step's time: prepare_windows, build_dataset, fit, evaluate.
2. The baseline, measured in the same run: `rslearn model fit` (rslearn's CLI, a fresh
   process) with the same config (fit.yaml) on the same materialized windows, from scratch
   weights. The ratio of our fit step to it is the fit's overhead (checkpoint loading,
   resumable state, the slim checkpoint); the ratio of the whole command to it is what
   preparing, materializing and scoring before/after add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo-finetune"
STEPS = ("prepare_windows", "build_dataset", "fit", "evaluate")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {out.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "scratch"
        total = _run([py, "-m", "rslp.cli", "finetune", str(DEMO), "--scratch", str(scratch)], env)
        metrics = json.loads((scratch / "finetune" / "metrics.json").read_text())
        steps = {}
        again = Path(tmp) / "again"
        for step in STEPS:
            steps[step] = _run(
                [py, "-m", "rslp.cli", "finetune", str(DEMO), "--scratch", str(again),
                 "--steps", step],
                env,
            )  # fmt: skip
        fit_yaml = again / "finetune" / "fit.yaml"
        cfg = fit_yaml.read_text().replace("\n  logger:", "\n  logger_unused:")
        base = Path(tmp) / "rslearn-fit.yaml"
        base.write_text(cfg)
        import yaml

        c = yaml.safe_load(base.read_text())
        c["trainer"].pop("logger_unused", None)
        c["trainer"]["logger"] = False
        c["trainer"]["callbacks"] = []
        c["trainer"]["default_root_dir"] = str(Path(tmp) / "rslearn-root")
        base.write_text(yaml.safe_dump(c, sort_keys=False))
        plain = _run([py, "-m", "rslearn.main", "model", "fit", "--config", str(base)], env)
    print(
        f"esrunner finetune (demo, {metrics['splits']['windows']}): {total:.1f} s end to end; "
        f"validation accuracy {metrics['before']['accuracy']:.3f} -> "
        f"{metrics['after']['accuracy']:.3f}"
    )
    alone = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
    print(f"  steps alone (fresh processes): {alone}")
    print(f"  rslearn model fit on the same windows and config: {plain:.1f} s")
    fit_ratio, all_ratio = steps["fit"] / plain, total / plain
    print(f"  ratio: our fit step {fit_ratio:.2f} x, the whole command {all_ratio:.2f} x")


if __name__ == "__main__":
    main()
