"""The production profile for real: PostgreSQL, a Celery broker, the daemon, the webserver, two workers.

A small sharded fleet window (bench/fleet.py) is queued through the webserver as one run per
shard, the way `watchkeeper fleet submit` and the inference sensor do; the daemon launches the
runs and their steps go to Celery. The test checks what the profile promises: the steps ran in
at least two different worker processes, every model's verdict is in the PostgreSQL store, and
the webserver's instance is the PostgreSQL one with the run queue of deploy/production/dagster.yaml.
It uses the shipped instance and workspace files unchanged (bench/production.py starts the
processes), Redis as the broker, on a database index of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from conftest import ROOT, require_service

sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.service

MODELS, SHARDS, WORKERS = 8, 4, 2
BROKER = "redis://127.0.0.1:6379/14"


def _ancestors(pid: int) -> list[int]:
    """The pid and its parents, from /proc (the step's process is a pool child of a worker)."""
    chain = [pid]
    while chain[-1] > 1:
        try:
            chain.append(int(Path(f"/proc/{chain[-1]}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        except (OSError, IndexError, ValueError):
            break
    return chain


def _step_pids(instance, runs: list[str]) -> list[int]:
    import dagster as dg

    return [r.event_log_entry.dagster_event.pid for run in runs
            for r in instance.get_records_for_run(run, of_type=dg.DagsterEventType.STEP_START).records]


def test_a_sharded_window_runs_on_two_celery_workers_into_postgresql(tmp_path):
    require_service("PostgreSQL", 5432)
    require_service("Redis", 6379)
    from bench.fleet import DAY, build_fleet
    from bench.production import production_profile
    from cli.fleet import graphql_client, submit_shards, wait_for
    from watchkeeper.store import MonitoringStore

    data = tmp_path / "fleet"
    with production_profile(tmp_path / "profile", data, WORKERS, BROKER, shards=SHARDS) as profile:
        names = build_fleet(data, MODELS, profile.store_url)
        client = graphql_client(f"http://127.0.0.1:{profile.webserver_port}")
        runs = submit_shards(client, "evaluate_window", [DAY], SHARDS)
        assert set(wait_for(client, runs).values()) == {"SUCCESS"}

        with profile.instance() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            pids = _step_pids(instance, runs)
        workers = {w.pid: i for i, w in enumerate(profile.workers)}
        took = {next(workers[p] for p in _ancestors(pid) if p in workers) for pid in pids}
        assert len(pids) == SHARDS and len(took) >= 2, f"steps ran in worker(s) {took} only"

        query = "{ instance { info runQueuingSupported } runsOrError { ... on Runs { results { runId tags { key value } } } } }"
        answer = requests.post(f"http://127.0.0.1:{profile.webserver_port}/graphql", json={"query": query},
                               timeout=30).json()["data"]
        assert "PostgresRunStorage" in answer["instance"]["info"] and answer["instance"]["runQueuingSupported"]
        shards = {next(t["value"] for t in r["tags"] if t["key"] == "watchkeeper/shard")
                  for r in answer["runsOrError"]["results"] if r["runId"] in runs}
        assert shards == {f"{i}/{SHARDS}" for i in range(1, SHARDS + 1)}

        assert profile.store_url.startswith("postgresql")
        verdicts = {v.model: v.status for v in MonitoringStore(profile.store_url).verdicts(window=DAY)}
        assert sorted(verdicts) == names and "failed" not in verdicts.values(), verdicts
