"""The sensors, ticked on a real Dagster instance with the code location's definitions.

A sensor skips and reports what it cannot use (in the tick's log, its skip reason and an
observation whose count plots in the UI); it never raises on it, its cursor still moves and
every usable item is still scheduled in the same tick. Run keys are made of one day's files
only, so a sensor turned on after a replay asks for nothing new (issue 13).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

import sensors.inference_log as inference_module
from definitions import defs
from resources import InferenceLogResource
from sensors.drop_cursor import DropCursor
from sensors.inference_log import inference_sensor
from watchkeeper.inference_log import INFERENCE, InferenceLog
from watchkeeper.names import model_name_problem

D1, D2, D3, D4 = "2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"
TODAY = datetime.now(timezone.utc).date().isoformat()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@dataclass
class Tick:
    """What one tick asked for and reported."""

    runs: list[tuple[str, str]]            # (job, partition), in the order asked
    run_keys: list[str]
    cursor: str
    observed: dict[str, dict]              # asset -> metadata of its observation, if one was made
    arrived: list[tuple[str, str]]         # (asset, partition) of the arrival materializations
    skip_reason: str | None


class DropFolder:
    """A drop folder written file by file, and the inference sensor ticked over it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def predictions(self, model: str, day: str, n: int = 4) -> Path:
        ids = [f"{model}-{day}-{i}" for i in range(n)]
        frame = pd.DataFrame({"timestamp": pd.Timestamp(day, tz="UTC"), "prediction_id": ids, "prediction": 1.0})
        return self._write(frame, f"inference/{model}/{day}.parquet")

    def labels(self, model: str, arrival: str, *days: str) -> Path:
        """The labels of `model`'s predictions of `days`, arriving on `arrival`."""
        ids = [f"{model}-{day}-{i}" for day in days for i in range(4)]
        return self._write(pd.DataFrame({"prediction_id": ids, "label": 1.0}), f"labels/{model}/{arrival}.parquet")

    def _write(self, frame: pd.DataFrame, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        return path

    def tick(self, instance: dg.DagsterInstance, cursor: str | None = None) -> Tick:
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                     resources={"drop_folder": InferenceLogResource(root=str(self.root))}) as context:
            result = inference_sensor.evaluate_tick(context)
        events = result.asset_events or []
        return Tick([(r.job_name, r.partition_key) for r in result.run_requests],
                    [r.run_key for r in result.run_requests], result.cursor,
                    {e.asset_key.to_user_string(): e.metadata for e in events if isinstance(e, dg.AssetObservation)},
                    [(e.asset_key.to_user_string(), e.partition) for e in events
                     if isinstance(e, dg.AssetMaterialization)],
                    result.skip_message)


@pytest.fixture
def drop(tmp_path) -> DropFolder:
    return DropFolder(tmp_path / "drop")


def evaluate(*days: str) -> list[tuple[str, str]]:
    return [("evaluate_window", day) for day in days]


def refresh(*days: str) -> list[tuple[str, str]]:
    return [("refresh_labels", day) for day in days]


def skipped(metadata: dict) -> dict[str, str]:
    return {row.data["item"]: row.data["reason"] for row in metadata["skipped"].records}


# --- the drop folder: stray files are skipped and reported, good ones run ----------------------

def test_stray_files_are_skipped_and_reported_while_the_good_ones_run(drop, instance, tmp_path):
    for model in ("m1", "m2"):
        drop.predictions(model, D1)
        drop.predictions(model, D2)
    drop.labels("m1", D2, D1, D2)
    good = drop.root / f"inference/m1/{D1}.parquet"
    for name in ("inference/m1/notes.parquet", "inference/m1/README.txt", "inference/m1/2026-02-30.parquet",
                 "inference/m1/2026-10-31.parquet", "inference/m1/2099-01-01.parquet",
                 "inference/m1/.2026-11-05.parquet.swp", "inference/.cache/2026-11-05.parquet",
                 "inference/m1/archive/2026-11-05.parquet", "inference/usd...eur/2026-11-05.parquet",
                 "inference/stray.parquet", "outside/2026-11-07.parquet"):
        path = (tmp_path if name.startswith("outside") else drop.root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(good, path)
    (drop.root / "inference/m2/2026-11-07.parquet").symlink_to(tmp_path / "outside/2026-11-07.parquet")
    (drop.root / "inference/elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    for loop in ("inference/m2/2026-11-08.parquet", "inference/loop"):
        (drop.root / loop).symlink_to(drop.root / loop)
    (drop.root / f"labels/m2/{D2}.parquet").parent.mkdir(parents=True)
    (drop.root / f"labels/m2/{D2}.parquet").write_bytes(b"PAR1 truncated")
    strays = {
        "inference/.cache": "hidden",
        "inference/elsewhere": "a link out of the drop folder, or to nothing",
        "inference/m1/.2026-11-05.parquet.swp": "hidden",
        "inference/m1/2026-02-30.parquet": "not named YYYY-MM-DD.parquet",
        "inference/m1/2026-10-31.parquet": "dated before the first window, 2026-11-01",
        "inference/m1/2099-01-01.parquet": f"dated after today, {TODAY}",
        "inference/m1/README.txt": "not named YYYY-MM-DD.parquet",
        "inference/m1/archive": "a nested folder",
        "inference/m1/notes.parquet": "not named YYYY-MM-DD.parquet",
        "inference/m2/2026-11-07.parquet": "a link out of the drop folder, or to nothing",
        "inference/m2/2026-11-08.parquet": "a link out of the drop folder, or to nothing",
        "inference/loop": "a link out of the drop folder, or to nothing",
        "inference/stray.parquet": "not in a model folder",
        "inference/usd...eur": "folder name contains '...' (not allowed in a Dagster partition key)",
    }

    first = drop.tick(instance)
    assert first.runs == evaluate(D1, D2)                     # every good file, in the same tick
    assert skipped(first.observed["inference_log"]) == strays
    assert first.observed["inference_log"]["skipped_files"].value == len(strays)
    [(name, reason)] = skipped(first.observed["labels"]).items()
    assert name == f"labels/m2/{D2}.parquet" and reason.startswith("its prediction ids cannot be read: ")
    assert sorted(first.arrived) == sorted([("inference_log", d) for d in (D1, D1, D2, D2)] + [("labels", D2)])

    again = drop.tick(instance, first.cursor)                 # the cursor moved past every file
    assert again.runs == [] and again.observed == {}          # nothing new; the report did not change
    assert "skipped 14 inference files: 'inference/.cache': hidden;" in again.skip_reason
    assert f"skipped 1 label files: 'labels/m2/{D2}.parquet'" in again.skip_reason

    for name in strays:
        path = drop.root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    drop.labels("m2", D2, D1, D2)                             # the broken label file is replaced
    cleaned = drop.tick(instance, again.cursor)
    assert cleaned.runs == refresh(D1, D2)
    assert cleaned.observed["inference_log"]["skipped_files"].value == 0
    assert cleaned.observed["labels"]["skipped_files"].value == 0


def test_files_of_today_wait_for_their_window(drop, instance):
    drop.predictions("m1", D1)
    drop.predictions("m1", TODAY)
    tick = drop.tick(instance)
    assert tick.runs == evaluate(D1)                          # today's partition does not exist yet
    assert TODAY not in DropCursor.load(tick.cursor).seen(INFERENCE).days
    assert tick.observed["inference_log"]["skipped_files"].value == 0

    # Once the day has ended (here: the next day, as the listing sees it), it is new.
    log, seen = InferenceLog(drop.root), DropCursor.load(tick.cursor).seen(INFERENCE)
    waiting = log.scan(INFERENCE, "2026-11-01", D1, today=D2)
    assert [f.day for f in waiting.waiting] == [] and [f.day for f in waiting.files] == [D1]
    drop.predictions("m1", D2)
    before, after = log.scan(INFERENCE, "2026-11-01", D1, today=D2), log.scan(INFERENCE, "2026-11-01", D2, today=D3)
    assert [f.day for f in before.waiting] == [D2]
    assert list(seen.changes(after.files, horizon="2026-11-01")) == [D2]


def test_unreadable_prediction_files_are_reported_when_labels_are_matched(drop, instance):
    drop.predictions("m1", D1)
    drop.predictions("m1", D2)
    caught_up = drop.tick(instance).cursor
    (drop.root / f"inference/m1/{D1}.parquet").write_bytes(b"not parquet")
    drop.labels("m1", D3, D2)
    tick = drop.tick(instance, caught_up)
    assert tick.runs == evaluate(D1) + refresh(D2)            # the broken window is still evaluated (and fails there)
    assert list(skipped(tick.observed["inference_log"])) == [f"inference/m1/{D1}.parquet"]


# --- run keys: one day's files only (issue 13) --------------------------------------------------

def test_run_keys_depend_only_on_their_days_files(drop, instance):
    """Replay four days tick by tick, as the demo does; then a sensor with no cursor asks only for
    runs that already ran, and each change asks for exactly the runs it needs."""
    launched, cursor = set(), None

    def tick(with_cursor: bool = True) -> list[tuple[str, str]]:
        """A tick, and the runs the daemon launches from it (each run key once)."""
        nonlocal cursor
        result = drop.tick(instance, cursor if with_cursor else None)
        cursor = result.cursor
        new = [run for run, key in zip(result.runs, result.run_keys) if key not in launched]
        launched.update(result.run_keys)
        return new

    replay = []
    for i, day in enumerate((D1, D2, D3, D4)):
        for model in ("m1", "m2"):
            drop.predictions(model, day)
            drop.labels(model, day, *(D1, D2, D3, D4)[max(0, i - 2):i + 1])   # labels up to two days late
        replay.append(tick())
    assert replay == [evaluate(D1), evaluate(D2) + refresh(D1), evaluate(D3) + refresh(D1, D2),
                      evaluate(D4) + refresh(D2, D3)]

    assert tick(with_cursor=False) == []                      # turned on after the replay: nothing to launch
    assert tick() == []

    drop.predictions("m1", D2, n=5)                           # one file rewritten
    assert tick() == evaluate(D2)
    drop.labels("m2", D4, D1)                                 # late labels of one window
    assert tick() == refresh(D1)
    stamp = os.stat(drop.root / f"inference/m1/{D1}.parquet").st_mtime_ns
    moved = drop.predictions("m3", D3)                        # a file moved in with an old time
    os.utime(moved, ns=(stamp, stamp))
    assert tick() == evaluate(D3)
    assert tick() == []


@pytest.mark.slow
def test_after_the_demo_a_sensor_turned_on_launches_nothing_until_a_new_file_lands(broken_day):
    """The demo replayed 14 days through the same sensor; turned on afterwards with no cursor, its
    first tick asks only for runs that already ran, and the next day's files ask for their run."""
    from conftest import BROKEN_DAY

    assert broken_day.rerun_after_replay == 0
    assert broken_day.runs == [f"evaluate_window[{BROKEN_DAY}]"]


def test_matching_labels_pages_with_the_cursor_when_the_tick_runs_out_of_time(drop, instance, monkeypatch):
    for day in (D1, D2, D3, D4):
        drop.predictions("m1", day)
    cursor = drop.tick(instance).cursor
    for arrival, window in ((D2, D1), (D3, D2), (D4, D3)):
        drop.labels("m1", arrival, window)
    monkeypatch.setattr(inference_module, "LABEL_BUDGET_SECONDS", 0.0)   # one arrival day per tick
    asked = []
    for _ in range(3):
        tick = drop.tick(instance, cursor)
        asked.append(tick.runs)
        cursor = tick.cursor
    assert asked == [refresh(D1), refresh(D2), refresh(D3)]
    assert drop.tick(instance, cursor).runs == []


def test_model_names_that_cannot_be_partition_keys_or_folders_are_refused():
    assert model_name_problem("churn eu") is None and model_name_problem("fraud-v2.1_x") is None
    problems = {name: model_name_problem(name) for name in ("", " x", ".hidden", "a/b", "a...b", "a\nb", "a\u200bb",
                                                            "x" * 201)}
    assert all(problems.values()), problems


# --- the other sensors: one bad item is skipped and reported, the rest proceed --------------------

def evaluate_sensor(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None = None,
                    **resources) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                                 resources=resources) as context:
        return sensor.evaluate_tick(context)


def test_registry_entries_that_cannot_be_monitored_are_skipped_and_the_others_profiled(tmp_path, instance):
    from mlflow import MlflowClient

    from resources import MlflowRegistryResource
    from sensors.registry import registry_sensor
    from watchkeeper.registry import MONITORED_TAG, TASK_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def register(name: str, tags: dict | None = None, versions: int = 1) -> None:
        client.create_registered_model(name, tags=tags)
        for _ in range(versions):
            version = client.create_model_version(name, source=str(tmp_path / "model")).version
        if versions and not tags:
            client.set_registered_model_alias(name, "champion", version)

    register("churn eu")
    register("prices", tags={MONITORED_TAG: "true", TASK_TAG: "regression"}, versions=2)
    register("usd...eur")                                          # no partition key can hold it
    register("unborn", tags={MONITORED_TAG: "true"}, versions=0)
    register("clusters", tags={MONITORED_TAG: "true", TASK_TAG: "clustering"})
    register("unwatched", tags={"team": "x"})                      # neither alias nor tag: not monitored

    registry = MlflowRegistryResource(tracking_uri=uri)
    first = evaluate_sensor(registry_sensor, instance, mlflow_registry=registry)
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [("churn eu", "churn eu:1"),
                                                                        ("prices", "prices:2")]
    assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [["churn eu", "prices"]]
    [observation] = first.asset_events
    assert observation.asset_key == dg.AssetKey("reference_profile")
    assert observation.metadata["skipped_models"].value == 3
    assert skipped(observation.metadata) == {
        "usd...eur": "its name contains '...' (not allowed in a Dagster partition key)",
        "unborn": "it is tagged to be monitored but has no version",
        "clusters": "unknown task 'clustering' in tag watchkeeper.task (one of binary, multiclass, regression)"}

    instance.add_dynamic_partitions("models", ["churn eu", "prices"])
    again = evaluate_sensor(registry_sensor, instance, first.cursor, mlflow_registry=registry)
    assert again.run_requests == [] and again.asset_events == []
    assert again.skip_message.startswith("no champion changed; skipped 3 registered models: 'clusters': unknown task")


def test_a_model_whose_verdicts_cannot_be_read_does_not_stop_retraining_the_others(tmp_path, instance):

    from resources import MonitoringConfigResource, MonitoringStoreResource
    from sensors.retraining import retraining_sensor
    from watchkeeper.store import MonitoringStore, health

    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    store = MonitoringStore(url)
    for model in ("churn", "fraud", "prices"):
        store.put_profile(model, "1", "binary", {}, {})
        for day in (D1, D2, D3):
            store.put_health(model, day, "1", "drifted", [{"signal": "data_drift", "detail": "x"}])
    with store.engine.begin() as conn:
        conn.execute(health.update().where(health.c.model == "fraud", health.c.window == D2)
                     .values(reasons_json="{truncated"))
    for day in (D1, D2, D3):
        store.put_health("prices", day, "1", "drifted", [{"detail": "a reason without its signal"}])

    result = evaluate_sensor(retraining_sensor, instance, monitoring_store=MonitoringStoreResource(url=url),
                             monitoring_config=MonitoringConfigResource(path="deploy/monitoring.yaml"))
    assert [r.run_key for r in result.run_requests] == ["retrain:churn:1"]
    assert result.run_requests[0].run_config["ops"]["retrain_model_op"]["config"]["windows"] == [D1, D2, D3]
    assert result.skip_message is None

    store.put_health("churn", D3, "1", "ok", [])
    quiet = evaluate_sensor(retraining_sensor, instance, monitoring_store=MonitoringStoreResource(url=url),
                            monitoring_config=MonitoringConfigResource(path="deploy/monitoring.yaml"))
    assert quiet.run_requests == []
    assert quiet.skip_message == (
        "no problem has persisted long enough; skipped 2 models: 'fraud': its verdicts cannot be read "
        "(JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
        "'prices': its verdicts cannot be read (KeyError: 'signal')")


def test_flagged_names_that_are_not_monitored_models_are_skipped(instance):
    """A flagged name with no partition is skipped and named; the monitored models are drawn. Once
    every model has a scorecard (the sensor draws each one once), a tick that flags only an unknown
    name requests nothing and says why."""
    from monitoring_assets.health import SPEC as HEALTH_SPEC
    from monitoring_assets.scorecard import model_scorecard
    from sensors.scorecard import scorecard_sensor

    instance.add_dynamic_partitions("models", ["churn", "fraud"])
    flagged = dg.MetadataValue.json(["churn", "ghost", "fraud"])
    instance.report_runless_asset_event(dg.AssetMaterialization(HEALTH_SPEC.key, partition=D1,
                                                                metadata={"flagged_models": flagged}))
    result = evaluate_sensor(scorecard_sensor, instance)
    assert [r.partition_key for r in result.run_requests] == ["churn", "fraud"]   # a run for "ghost" fails the tick
    for model in ("churn", "fraud"):   # the runs it asked for drew both scorecards
        instance.report_runless_asset_event(dg.AssetMaterialization(model_scorecard.key, partition=model))
    instance.report_runless_asset_event(dg.AssetMaterialization(
        HEALTH_SPEC.key, partition=D2, metadata={"flagged_models": dg.MetadataValue.json(["ghost"])}))
    later = evaluate_sensor(scorecard_sensor, instance, result.cursor)
    assert later.run_requests == []
    assert later.skip_message == "skipped 1 flagged models: 'ghost': not a monitored model (no partition of that name)"


def test_delivery_goes_on_when_a_channel_or_the_policy_file_is_broken(tmp_path, instance, monkeypatch):
    from resources import AlertingResource, MonitoringStoreResource
    from sensors.alert_delivery import alert_delivery_sensor
    from watchkeeper.alerting.outbox import DEAD, DELIVERED, Outbox
    from watchkeeper.alerting.record import AlertRecord

    url, policy = f"sqlite:///{tmp_path / 'monitoring.db'}", tmp_path / "alerting.yaml"
    policy.write_text("version: 1\nchannels:\n  outbox: {type: outbox}\n"
                      "  slack: {type: slack, channel_id: C1, base_url: 'https://127.0.0.1:9/api/'}\n"
                      "routes: [{to: [outbox, slack]}]\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)        # the Slack channel's secret is missing
    outbox = Outbox(url)
    for i in range(3):
        outbox.enqueue(AlertRecord(fingerprint=f"m:1:data_drift:{i}", model="m", version="1", window=D1,
                                   severity="warning", kind="data_drift", title="t", summary="s"), ["outbox", "slack"])
    resources = {"monitoring_store": MonitoringStoreResource(url=url)}

    broken_file = tmp_path / "missing.yaml"
    skipped_tick = evaluate_sensor(alert_delivery_sensor, instance, **resources,
                                   alerting=AlertingResource(policy_path=str(broken_file)))
    assert skipped_tick.skip_message.startswith("nothing sent: the alerting policy cannot be used: ")
    assert outbox.counts() == {"pending": 6, "delivered": 0, "dead": 0}     # waiting, not lost

    tick = evaluate_sensor(alert_delivery_sensor, instance, **resources,
                           alerting=AlertingResource(policy_path=str(policy)))
    assert tick.skip_message.startswith("delivered 3, retrying 0, dead 3, escalations queued 0")
    status = {(r["channel"], r["status"], r["last_error"]) for r in outbox.rows()}
    assert status == {("outbox", DELIVERED, None),
                      ("slack", DEAD, "Slack: environment variable SLACK_BOT_TOKEN is not set")}
