"""One window of a synthetic fleet, end to end through Dagster, in the production or embedded profile.

    python bench/bench_fleet.py --models N --workers W --format json [--profile production|embedded]

Builds (or reuses) a fleet of N models (bench/fleet.py: 20 features, 5,000 rows a window, 2%
drifted). The production profile (default) starts what deploy/production/compose.yaml runs,
as local processes on this machine's PostgreSQL and Redis (bench/production.py), queues one run
per shard through the webserver (`watchkeeper fleet submit`), and waits for every run; W Celery
workers take the shard steps. The embedded profile runs the day as one in-process run on a
SQLite instance and store (W is ignored: one process).

Prints one JSON object: models, workers, shards, executor, seconds (wall, from queueing the
runs to the last one's end; starting the services is not counted), engine_seconds (the engine's
part on the busiest worker: the sum of the shard evaluations it ran), engine_cpu_seconds (all
shards), worker_cpu_seconds (CPU the workers used during the window: what the load of other
users does not inflate), per_model_seconds (seconds / models), failed_models (no verdict, or a failed one),
worker_processes (distinct step processes), load_average (uptime's, before and after).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet import DAY, build_fleet  # noqa: E402

# Each shard run costs a process (imports, Dagster events, polling its steps) that shares the cores with the
# workers: 8 shards of 125 models took the engine of 1,000 models to 99 s on the busiest worker, 2 shards of
# 500 to 48 s (docs/benchmarks.md). Equal hash shards keep workers busy to the end without smaller ones.
MODELS_PER_SHARD = 500


def default_shards(models: int, workers: int) -> int:
    """A multiple of the workers, with at most MODELS_PER_SHARD models in a shard."""
    rounds = max(1, math.ceil(models / (MODELS_PER_SHARD * workers)))
    return workers * rounds


def failed_models(store_url: str, names: list[str]) -> int:
    from watchkeeper.health import FAILED
    from watchkeeper.store import MonitoringStore

    verdicts = {v.model: v.status for v in MonitoringStore(store_url).verdicts(window=DAY)}
    return sum(1 for name in names if verdicts.get(name, FAILED) == FAILED)


def run_facts(instance, run_ids: list[str]) -> tuple[list[float], dict[int, float]]:
    """(engine seconds of each shard, engine seconds summed by the process that ran the step)."""
    import dagster as dg

    shard_seconds, by_process = [], {}
    for run_id in run_ids:
        records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_START,
                                                                dg.DagsterEventType.ASSET_MATERIALIZATION}).records
        pids = [r.event_log_entry.dagster_event.pid for r in records
                if r.event_log_entry.dagster_event.event_type == dg.DagsterEventType.STEP_START]
        seconds = [r.event_log_entry.dagster_event.event_specific_data.materialization.metadata["engine_seconds"].value
                   for r in records
                   if r.event_log_entry.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                   and r.event_log_entry.dagster_event.asset_key.to_user_string() == "production_window"]
        shard_seconds += seconds
        for pid in pids[-1:]:   # a retried step counts where it finally ran
            by_process[pid] = by_process.get(pid, 0.0) + sum(seconds)
    return shard_seconds, by_process


def production(args, workdir: Path, data: Path) -> dict:
    from bench.production import production_profile
    from cli.fleet import graphql_client, submit_shards, wait_for

    shards = args.shards or default_shards(args.models, args.workers)
    with production_profile(workdir, data, args.workers, args.broker, shards=shards) as profile:
        names = build_fleet(data, args.models, profile.store_url)
        client = graphql_client(f"http://127.0.0.1:{profile.webserver_port}")
        started, cpu_before = time.perf_counter(), profile.worker_cpu_seconds()
        runs = submit_shards(client, "evaluate_window", [DAY], shards)
        statuses = wait_for(client, runs, poll_seconds=0.5)
        seconds = time.perf_counter() - started
        worker_cpu = profile.worker_cpu_seconds() - cpu_before
        with profile.instance() as instance:
            shard_seconds, by_process = run_facts(instance, runs)
            errors = failure_messages(instance, [run for run, status in statuses.items() if status != "SUCCESS"])
        failed = failed_models(profile.store_url, names)
    return {"executor": "celery", "shards": shards, "seconds": seconds, "failed_models": failed,
            "failed_runs": sum(s != "SUCCESS" for s in statuses.values()),
            "engine_seconds": max(by_process.values(), default=0.0), "engine_cpu_seconds": sum(shard_seconds),
            "worker_processes": len(by_process), "worker_cpu_seconds": round(worker_cpu, 2), "errors": errors}


def failure_messages(instance, runs: list[str]) -> list[str]:
    """What made failed runs fail (the first line of each failure event), for the report."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT}
    lines = []
    for run in runs:
        for record in instance.get_records_for_run(run, of_type=kinds).records:
            entry = record.event_log_entry
            if entry.dagster_event.event_type != dg.DagsterEventType.ENGINE_EVENT or "rror" in (entry.message or ""):
                lines.append(f"{run[:8]}: {(entry.message or '').splitlines()[0][:300]}")
    return lines


def embedded(args, workdir: Path, data: Path) -> dict:
    import dagster as dg

    store_url = f"sqlite:///{workdir / 'monitoring.db'}"
    names = build_fleet(data, args.models, store_url)
    os.environ.update({"WATCHKEEPER_STORE_URL": store_url, "WATCHKEEPER_DATA_DIR": str(data),
                       "WATCHKEEPER_MLFLOW_URI": f"sqlite:///{workdir / 'mlflow.db'}",
                       "WATCHKEEPER_ALERT_POLICY": str(ROOT / "deploy" / "alerting.demo.yaml"),
                       "WATCHKEEPER_LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1"})
    os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", uuid.uuid4().hex * 2)
    from definitions import defs

    (workdir / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(workdir / "dagster_home")) as instance:
        started = time.perf_counter()
        result = defs.resolve_job_def("evaluate_window").execute_in_process(
            instance=instance, partition_key=DAY, run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
        seconds = time.perf_counter() - started
        shard_seconds, _ = run_facts(instance, [result.run_id])
    return {"executor": "in_process", "shards": 1, "seconds": seconds, "failed_models": failed_models(store_url, names),
            "failed_runs": int(not result.success), "engine_seconds": sum(shard_seconds),
            "engine_cpu_seconds": sum(shard_seconds), "worker_processes": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, help=f"default: a multiple of the workers, <= {MODELS_PER_SHARD} models each")
    parser.add_argument("--profile", choices=["production", "embedded"], default="production")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13",
                        help="Celery broker and result backend (production profile)")
    parser.add_argument("--fleet-dir", type=Path, help="where the fleet's files are kept and reused "
                                                       "(default: a folder per size under the temp dir)")
    parser.add_argument("--format", choices=["json", "text"], default="json")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs (the folder is printed)")
    args = parser.parse_args()
    data = args.fleet_dir or Path(tempfile.gettempdir()) / f"watchkeeper-fleet-{args.models}"
    data.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        facts = (production if args.profile == "production" else embedded)(args, tmp, data)
    finally:
        if args.keep:
            print(f"processes' logs and instance: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    workers = args.workers if args.profile == "production" else 1
    report = {"models": args.models, "workers": workers, **facts,
              "per_model_seconds": facts["seconds"] / args.models,
              "load_average": {"before": [round(x, 2) for x in load_before],
                               "after": [round(x, 2) for x in os.getloadavg()]}}
    for key in ("seconds", "engine_seconds", "engine_cpu_seconds", "per_model_seconds"):
        report[key] = round(report[key], 4)
    if args.format == "json":
        print(json.dumps(report))
    else:
        print("\n".join(f"{key}: {value}" for key, value in report.items()))


if __name__ == "__main__":
    main()
