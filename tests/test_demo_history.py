"""The demo is real history: its days are runs of the code location's jobs, launched the way the
sensor daemon launches them, with every sensor's cursor stored, so that turning the sensors on
afterwards starts nothing until a new file lands, and then only what that file needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType

from conftest import ROOT, demo_copy, replayed_day

pytestmark = pytest.mark.slow
SENSORS = {"registry_sensor", "inference_sensor", "scorecard_sensor", "retraining_sensor", "alert_delivery_sensor",
           "feast_sensor", "ticket_sync_sensor"}
DEMO_DAYS = [f"2026-11-{d:02d}" for d in range(1, 15)]
NEW_DAY, NEW_MODEL = "2026-11-15", "wine_classifier"


def test_replayed_days_are_sensor_runs_of_the_location_jobs(demo):
    home, summary = demo
    assert summary["idle_sensor_runs"] == 0
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="evaluate_window"))
        assert sorted(r.tags["dagster/partition"] for r in runs) == DEMO_DAYS
        for run in runs:
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert run.tags["dagster/sensor_name"] == "inference_sensor"
            assert run.tags["dagster/run_key"].startswith(run.tags["dagster/partition"] + "@")
            assert run.remote_job_origin.location_name == "watchkeeper", "the UI lists it under the location's job"
        states = {s.instigator_name: s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)}
        assert set(states) == SENSORS
        assert not any(s.is_running for s in states.values()), "left off, as the README says"
        for name in ("registry_sensor", "inference_sensor", "scorecard_sensor"):
            assert states[name].instigator_data.cursor, f"{name} kept its cursor"
            state = states[name]
            assert instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1), f"{name} has ticks"


def test_the_served_demo_has_exactly_its_days_as_windows(demo):
    """The code location as `watchkeeper demo --serve` loads it lists the demo's days and no later day
    (which the UI would show as "missing" though no file could exist for it)."""
    from cli.demo import demo_environment

    code = "import json; from monitoring_assets.partitions import daily_windows as w; print(json.dumps(w.get_partition_keys()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **demo_environment(demo[0])},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == DEMO_DAYS


def test_sensors_turned_on_start_nothing_then_exactly_what_a_new_file_needs(demo, tmp_path, monkeypatch):
    """Turned on after the demo, the sensors start nothing. A file of the day after the demo waits for
    its window; once the windows run through that day (served again, or a live deployment), it starts
    exactly the runs it needs."""
    from cli.demo import PROJECT, demo_environment
    from cli.location_sensors import LocationSensors
    from watchkeeper.inference_log import INFERENCE, InferenceLog

    home = demo_copy(demo[0], tmp_path / "demo")
    for name, value in demo_environment(home).items():
        monkeypatch.setenv(name, value)
    with LocationSensors(home / "dagster_home", PROJECT / "workspace.yaml") as sensors:
        idle = [r for _ in range(2) for name in sorted(SENSORS) for r in sensors.tick(name)]
        assert idle == [], [f"{r.job_name}[{r.tags.get('dagster/partition')}]" for r in idle]
        frame = replayed_day(InferenceLog(home), NEW_DAY)[NEW_MODEL]
        frame.to_parquet(home / INFERENCE / NEW_MODEL / f"{NEW_DAY}.parquet", index=False)
        assert sensors.tick("inference_sensor") == [], "no window for the day after the demo's last yet"

    for name, value in demo_environment(home).items():   # served again: its windows end at the new day
        monkeypatch.setenv(name, value)
    with LocationSensors(home / "dagster_home", PROJECT / "workspace.yaml") as sensors:
        by_sensor = {name: [] for name in SENSORS}
        for _ in range(2):
            for name in ("inference_sensor", "scorecard_sensor", "retraining_sensor", "alert_delivery_sensor",
                         "registry_sensor"):
                by_sensor[name] += sensors.tick(name)
        assert sensors.failed_runs == []
        flagged = _flagged(sensors.instance, NEW_DAY)
    assert [(r.job_name, r.tags["dagster/partition"]) for r in by_sensor["inference_sensor"]] == \
        [("evaluate_window", NEW_DAY)], "one new file: its day's window, once"
    assert sorted(r.tags["dagster/partition"] for r in by_sensor["scorecard_sensor"]) == sorted(flagged)
    assert by_sensor["registry_sensor"] == [] and by_sensor["alert_delivery_sensor"] == []
    assert NEW_MODEL not in flagged


def _flagged(instance: dg.DagsterInstance, day: str) -> list[str]:
    from monitoring_assets.health import flagged_models

    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("model_health"), asset_partitions=[day]), limit=1).records
    return flagged_models(record.asset_materialization.metadata)
