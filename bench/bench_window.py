"""Cost of evaluating one daily window for 100 demo-sized models, through real Dagster runs.

Watchkeeper's design: one `evaluate_window` run covers every model of the day. The
baseline is the design it replaces, one run per model and window (what a model x day
multi-partition would launch): the same job on a store holding a single model, run for a
sample of models and scaled to the fleet. Both are measured in this run, on a real
(temporary, SQLite) Dagster instance.

Encryption at rest (docs/security.md) is measured the same way: the same fleet twice, once with
every file and sealed store column encrypted under a file KMS and once in plain Parquet, the
batched run timed alternately on each (`--baseline-runs 0` skips the one-run-per-model baseline).

    .venv/bin/python bench/bench_window.py [--models 100] [--baseline-runs 10] [--demo-dir PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-08"   # the first drifted day: every kind of verdict is computed


def build_demo(directory: Path) -> None:
    if not (directory / "monitoring.db").exists():
        subprocess.run([sys.executable, "-m", "cli.main", "demo", "--headless", "--dir", str(directory)],
                       cwd=ROOT, check=True, capture_output=True)


@contextmanager
def keys(folder: Path | None):
    """The KMS folder the code under it encrypts with (None: no key, plain files and columns)."""
    from watchkeeper.security.kms import KMS_DIR_ENV, FileKms

    before = os.environ.pop(KMS_DIR_ENV, None)
    if folder is not None:
        FileKms.create(folder)
        os.environ[KMS_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        os.environ.pop(KMS_DIR_ENV, None)
        if before is not None:
            os.environ[KMS_DIR_ENV] = before


def fleet(demo: Path, home: Path, names: list[str], kms: Path | None = None) -> None:
    """A drop folder and store with `names` models, each a copy of a demo model, encrypted under
    the KMS folder `kms` (None: plain)."""
    from watchkeeper.frames import read_parquet
    from watchkeeper.security.sealed_files import write_parquet
    from watchkeeper.store import MonitoringStore

    with keys(demo / "secrets" / "kms"):
        source = MonitoringStore(f"sqlite:///{demo / 'monitoring.db'}").latest_profiles()
        frames = {path.relative_to(demo): read_parquet(path) for stream in ("inference", "labels")
                  for path in (demo / stream).glob("*/*.parquet")}
    demo_models = sorted(name for name, p in source.items()   # models whose rows come from files, not Feast
                         if not p.reference.get("feature_service"))
    home.mkdir(parents=True, exist_ok=True)
    with keys(kms):
        store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
        for i, name in enumerate(names):
            original = source[demo_models[i % len(demo_models)]]
            store.put_profile(name, original.version, original.task, original.profile, original.reference)
            for path, frame in frames.items():
                stream, model, file = path.parts
                if model == original.model:
                    write_parquet(frame, home / stream / name / file)


def timed_run(home: Path, kms: Path | None = None) -> float:
    with keys(kms):
        return _timed_run(home)


def _timed_run(home: Path) -> float:
    import dagster as dg

    from definitions import defs

    os.environ.update({"WATCHKEEPER_STORE_URL": f"sqlite:///{home / 'monitoring.db'}",
                       "WATCHKEEPER_DATA_DIR": str(home), "WATCHKEEPER_MLFLOW_URI": "sqlite:///unused.db",
                       "WATCHKEEPER_ALERT_POLICY": str(ROOT / "deploy" / "alerting.demo.yaml"),
                       "WATCHKEEPER_LOG_LEVEL": "WARNING"})
    os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", "bench-signing-key-" + "0" * 32)   # detector state is signed
    job = defs.resolve_job_def("evaluate_window")
    with dg.DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=DAY,
                                        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
        elapsed = time.perf_counter() - start
    assert result.success
    return elapsed


def fleet_arguments(description: str) -> argparse.ArgumentParser:
    """The options every window benchmark takes: the fleet's size and a demo folder to reuse."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--demo-dir", type=Path)
    return parser


def demo_for(tmp: str, demo_dir: Path | None) -> Path:
    """The demo the fleet is copied from: `demo_dir` when given (built there if empty), else one in `tmp`."""
    demo = demo_dir or Path(tmp) / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    build_demo(demo)
    return demo


def main() -> None:
    parser = fleet_arguments(__doc__.splitlines()[0])
    parser.add_argument("--baseline-runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = demo_for(tmp, args.demo_dir)
        names = [f"model-{i:04d}" for i in range(args.models)]
        batched_home, plain_home, kms = Path(tmp) / "batched", Path(tmp) / "plain", Path(tmp) / "kms"
        fleet(demo, batched_home, names, kms)
        fleet(demo, plain_home, names)
        timed_run(batched_home, kms)   # warm-up: imports and first-run caches are not the window's cost
        timed_run(plain_home)
        on, off = [], []
        for _ in range(3):             # alternately, so a busier minute weighs on both
            on.append(timed_run(batched_home, kms))
            off.append(timed_run(plain_home))
        batched, plain = statistics.median(on), statistics.median(off)
        print("| models | encryption off (s) | encryption on (s) | overhead |")
        print("|---|---|---|---|")
        print(f"| {args.models} | {plain:.2f} | {batched:.2f} | {100 * (batched / plain - 1):+.1f}% |")
        if not args.baseline_runs:
            return
        singles = []
        for i, name in enumerate(names[: args.baseline_runs]):
            home = Path(tmp) / f"single-{i}"
            fleet(demo, home, [name], kms)
            singles.append(timed_run(home, kms))
        per_model = statistics.median(singles)
    baseline = per_model * args.models
    print(f"| models | batched run (s) | one run per model (s, {args.baseline_runs} runs scaled) | speed-up |")
    print("|---|---|---|---|")
    print(f"| {args.models} | {batched:.2f} | {baseline:.2f} ({per_model:.3f} per model) | {baseline / batched:.1f}x |")


if __name__ == "__main__":
    main()
