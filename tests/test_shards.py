"""Sharded windows: a day of the fleet split by a stable hash, each shard its own run.

The shards of a day partition the fleet (every model in exactly one), the assignment does not
depend on the process or on the other models, the inference sensor fans a day out into one run
per shard when WATCHKEEPER_SHARDS asks for it (and into one plain run when it does not), and a
shard run through Dagster evaluates exactly its models and says which shard it was.
"""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pytest

from conftest import ROOT
from monitoring_assets.execution import executor_from_environment
from monitoring_assets.sharding import SHARD_TAG, WINDOW_TAG, shard_requests, shards_from_environment
from test_monitor import DAY, fleet, monitor  # noqa: F401 - the three-model fleet fixture
from watchkeeper.shards import Shard, all_shards, shard_models, shard_of

NAMES = [f"model-{i:04d}" for i in range(3000)]


def test_shards_partition_the_fleet_evenly():
    shards = [shard_models(NAMES, i, 8) for i in range(8)]
    assert sorted(m for s in shards for m in s) == sorted(NAMES)
    assert min(map(len, shards)) > 0.8 * len(NAMES) / 8        # no shard much smaller than its share


def test_a_model_keeps_its_shard_across_processes_and_fleet_changes():
    here = [shard_of(name, 8) for name in NAMES[:50]]
    code = f"from watchkeeper.shards import shard_of; print([shard_of(n, 8) for n in {NAMES[:50]!r}])"
    there = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert str(here) == there.stdout.strip()                  # not Python's per-process salted hash()
    assert shard_models(NAMES[:50], 3, 8) == shard_models(NAMES[:50] + ["newcomer"], 3, 8)[: len(shard_models(NAMES[:50], 3, 8))]


@pytest.mark.parametrize("index, count", [(0, 0), (3, 3), (-1, 2)])
def test_an_impossible_shard_is_refused(index, count):
    with pytest.raises(ValueError, match="shard"):
        Shard(index, count)


def test_the_sensor_asks_for_one_run_per_shard(monkeypatch):
    assert [r.run_key for r in shard_requests("evaluate_window", DAY, "k", 1)] == ["k"]   # the embedded profile
    runs = shard_requests("evaluate_window", DAY, "k", 3)
    assert [r.tags[SHARD_TAG] for r in runs] == ["1/3", "2/3", "3/3"] and {r.tags[WINDOW_TAG] for r in runs} == {DAY}
    assert len({r.run_key for r in runs}) == 3 and {r.partition_key for r in runs} == {DAY}
    assert [r.run_config["ops"]["evaluate_models"]["config"] for r in runs] == [
        {"shard": i, "shards": 3} for i in range(3)]
    monkeypatch.setenv("WATCHKEEPER_SHARDS", "4")
    assert shards_from_environment() == 4
    monkeypatch.setenv("WATCHKEEPER_SHARDS", "four")
    with pytest.raises(ValueError, match="WATCHKEEPER_SHARDS"):
        shards_from_environment()


def test_the_monitor_evaluates_only_its_shard(fleet):  # noqa: F811
    store, log, _ = fleet
    seen = [[o.model for o in monitor(store, log).evaluate(DAY, shard=shard)] for shard in all_shards(2)]
    assert sorted(seen[0] + seen[1]) == ["moved", "steady", "victim"]
    assert seen == [shard_models(["moved", "steady", "victim"], i, 2) for i in range(2)]


def test_a_shard_run_through_dagster_materialises_its_models_and_names_its_shard(fleet, monkeypatch):  # noqa: F811
    store, _, root = fleet
    monkeypatch.setenv("WATCHKEEPER_STORE_URL", str(store.engine.url))
    monkeypatch.setenv("WATCHKEEPER_DATA_DIR", str(root))
    monkeypatch.setenv("WATCHKEEPER_MLFLOW_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.setenv("WATCHKEEPER_ALERT_POLICY", str(ROOT / "deploy" / "alerting.demo.yaml"))
    monkeypatch.setenv("WATCHKEEPER_SIGNING_KEY", "test-" + "k" * 40)
    from definitions import defs

    shard = Shard(1, 2)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("evaluate_window").execute_in_process(
            instance=instance, partition_key=DAY, run_config=shard_requests("evaluate_window", DAY, "k", 2)[1].run_config)
        assert result.success
        window = instance.get_latest_materialization_event(dg.AssetKey("production_window")).asset_materialization
    assert window.partition == DAY and window.metadata["shard"].value == shard.label()
    assert window.metadata["models"].value == len(shard_models(["moved", "steady", "victim"], 1, 2))
    assert {v.model for v in store.verdicts(window=DAY)} == set(shard_models(["moved", "steady", "victim"], 1, 2))


def test_the_executor_is_chosen_by_the_environment():
    assert executor_from_environment({}) is None
    celery = executor_from_environment({"WATCHKEEPER_EXECUTOR": "celery", "WATCHKEEPER_CELERY_BROKER": "redis://h:6379/1",
                                        "WATCHKEEPER_CELERY_BACKEND": "redis://h:6379/1"})
    assert celery.name == "celery"
    with pytest.raises(ValueError, match="WATCHKEEPER_CELERY_BROKER"):
        executor_from_environment({"WATCHKEEPER_EXECUTOR": "celery"})
    with pytest.raises(ValueError, match="WATCHKEEPER_EXECUTOR"):
        executor_from_environment({"WATCHKEEPER_EXECUTOR": "dask"})


@pytest.mark.parametrize("arguments, message", [
    (["--from", "2026-11-05", "--to", "2026-11-01", "--shards", "2"], "--to 2026-11-01 is before --from"),
    (["--from", "2026-11-05", "--shards", "0"], "--shards"),
    (["--from", "yesterday", "--shards", "2"], "expected a day"),
])
def test_fleet_submit_refuses_bad_input_in_one_line(arguments, message):
    done = subprocess.run([sys.executable, "-m", "cli.main", "fleet", "submit", *arguments], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
