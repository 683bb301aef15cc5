"""Cost of evaluating one daily window for 100 demo-sized models, through real Dagster runs.

Watchkeeper's design: one `evaluate_window` run covers every model of the day. The
baseline is the design it replaces, one run per model and window (what a model x day
multi-partition would launch): the same job on a store holding a single model, run for a
sample of models and scaled to the fleet. Both are measured in this run, on a real
(temporary, SQLite) Dagster instance.

    .venv/bin/python bench/bench_window.py [--models 100] [--baseline-runs 10] [--demo-dir PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-08"   # the first drifted day: every kind of verdict is computed


def build_demo(directory: Path) -> None:
    if not (directory / "monitoring.db").exists():
        subprocess.run([sys.executable, "-m", "cli.main", "demo", "--headless", "--dir", str(directory)],
                       cwd=ROOT, check=True, capture_output=True)


def fleet(demo: Path, home: Path, names: list[str]) -> None:
    """A drop folder and store with `names` models, each a copy of a demo model."""
    from watchkeeper.store import MonitoringStore

    source = MonitoringStore(f"sqlite:///{demo / 'monitoring.db'}").latest_profiles()
    demo_models = sorted(source)
    home.mkdir(parents=True, exist_ok=True)
    store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
    for i, name in enumerate(names):
        original = source[demo_models[i % len(demo_models)]]
        store.put_profile(name, original.version, original.task, original.profile, original.reference)
        for stream in ("inference", "labels"):
            shutil.copytree(demo / stream / original.model, home / stream / name)


def timed_run(home: Path) -> float:
    import dagster as dg

    from definitions import defs

    os.environ.update({"WATCHKEEPER_STORE_URL": f"sqlite:///{home / 'monitoring.db'}",
                       "WATCHKEEPER_DATA_DIR": str(home), "WATCHKEEPER_MLFLOW_URI": "sqlite:///unused.db",
                       "WATCHKEEPER_ALERT_POLICY": str(ROOT / "deploy" / "alerting.demo.yaml"),
                       "WATCHKEEPER_LOG_LEVEL": "WARNING"})
    job = defs.resolve_job_def("evaluate_window")
    with dg.DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=DAY,
                                        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
        elapsed = time.perf_counter() - start
    assert result.success
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--demo-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo_dir or Path(tmp) / "demo"
        demo.mkdir(parents=True, exist_ok=True)
        build_demo(demo)
        names = [f"model-{i:04d}" for i in range(args.models)]
        batched_home = Path(tmp) / "batched"
        fleet(demo, batched_home, names)
        timed_run(batched_home)   # warm-up: imports and first-run caches are not the window's cost
        batched = statistics.median(timed_run(batched_home) for _ in range(3))
        singles = []
        for i, name in enumerate(names[: args.baseline_runs]):
            home = Path(tmp) / f"single-{i}"
            fleet(demo, home, [name])
            singles.append(timed_run(home))
        per_model = statistics.median(singles)
    baseline = per_model * args.models
    print(f"| models | batched run (s) | one run per model (s, {args.baseline_runs} runs scaled) | speed-up |")
    print("|---|---|---|---|")
    print(f"| {args.models} | {batched:.2f} | {baseline:.2f} ({per_model:.3f} per model) | {baseline / batched:.1f}x |")


if __name__ == "__main__":
    main()
