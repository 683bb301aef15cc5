"""Versioned verdicts and real data versions: a re-run keeps every verdict version, each with the
versions of the rows, profile, model and code it was computed from, and the data version in the
Dagster lineage changes when one row of the window changes."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from conftest import ROOT
from test_monitor import DAY, fleet, monitor  # noqa: F401 - the fixture
from watchkeeper.inference_log import INFERENCE
from watchkeeper.lineage import code_version, file_version, frame_version
from watchkeeper.monitor import WindowMonitor
from watchkeeper.security.audit import ALERT_QUEUED, VERDICT, Actor


def change_one_value(root, model: str) -> None:
    path = root / INFERENCE / model / f"{DAY}.parquet"
    frame = pd.read_parquet(path)
    frame.loc[17, "x"] += 0.001
    frame.to_parquet(path)


def test_a_rerun_keeps_both_verdict_versions_with_their_lineage(fleet):  # noqa: F811
    store, log, root = fleet
    first = {o.model: o for o in monitor(store, log).evaluate(DAY)}
    change_one_value(root, "steady")
    second = {o.model: o for o in monitor(store, log).evaluate(DAY)}
    versions = store.verdict_versions("steady", DAY)
    assert [v.revision for v in versions] == [1, 2] and second["steady"].revision == 2
    assert [v.status for v in versions] == ["ok", "ok"]
    old, new = versions[0].lineage, versions[1].lineage
    assert old["data_version"] != new["data_version"]                       # one value of one row changed
    assert old["data_version"] == first["steady"].lineage.data_version
    assert {k: old[k] for k in ("profile_version", "model_version", "code_version")} == \
        {k: new[k] for k in ("profile_version", "model_version", "code_version")}
    assert new["model_version"] == "1" and new["code_version"] == code_version()
    moved = store.verdict_versions("moved", DAY)
    assert moved[0].lineage["data_version"] == moved[1].lineage["data_version"]   # its rows did not change
    [current] = store.verdicts("steady", DAY)                                # readers see the newest only
    assert current.status == "ok" and len(store.verdicts(window=DAY)) == 3


def test_the_data_version_is_the_rows_and_nothing_else():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "c"]})
    assert frame_version(frame) == frame_version(frame.copy())
    assert frame_version(frame) != frame_version(frame.assign(x=[1.0, 2.0, 3.5]))
    assert frame_version(frame) != frame_version(frame.iloc[::-1])            # order matters
    assert frame_version(frame) != frame_version(frame.rename(columns={"c": "d"}))
    assert frame_version(frame.iloc[:0]) == frame_version(None) == "empty"


def test_verdicts_and_their_alerts_are_audited_with_actor_run_and_partition(fleet):  # noqa: F811
    store, log, _ = fleet
    from test_monitor import POLICY
    from watchkeeper.config import MonitoringConfig

    WindowMonitor(store, log, MonitoringConfig(), POLICY, actor=Actor("dagster:evaluate_window", "run-7")).evaluate(DAY)
    verdicts = {e.subject: e for e in store.audit_entries(VERDICT)}
    assert set(verdicts) == {"steady", "moved", "victim"}
    moved = verdicts["moved"]
    assert (moved.actor, moved.run_id, moved.partition) == ("dagster:evaluate_window", "run-7", DAY)
    assert moved.details["status"] == "drifted" and moved.details["revision"] == 1
    assert moved.details["lineage"] == store.verdict_versions("moved", DAY)[0].lineage
    queued = [e for e in store.audit_entries(ALERT_QUEUED)]
    assert queued and all(e.subject.startswith("moved:1:") and e.run_id == "run-7" for e in queued)
    assert store.verify_audit()[1] is None


def materialized_versions(instance: dg.DagsterInstance, asset: str) -> list[str]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset),
                                                                     asset_partitions=[DAY]), limit=10).records
    return [r.event_log_entry.asset_materialization.tags["dagster/data_version"] for r in records]


def test_the_lineage_carries_the_rows_version_and_the_code_version(fleet):  # noqa: F811
    from monitoring_assets import evaluate_models
    from resources import (
        AlertingResource, FeastResource, InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource,
    )

    store, _, root = fleet
    resources = {"monitoring_store": MonitoringStoreResource(url=str(store.engine.url)),
                 "drop_folder": InferenceLogResource(root=str(root)),
                 "monitoring_config": MonitoringConfigResource(path=""),
                 "alerting": AlertingResource(policy_path=str(ROOT / "deploy" / "alerting.demo.yaml")),
                 "feature_store": FeastResource()}
    with dg.instance_for_test() as instance:
        for _ in range(2):   # the second run reads the same rows
            dg.materialize([evaluate_models], selection=["production_window", "model_health"], partition_key=DAY,
                           instance=instance, resources=resources)
        change_one_value(root, "victim")
        result = dg.materialize([evaluate_models], selection=["production_window", "model_health"],
                                partition_key=DAY, instance=instance, resources=resources)
        window, health = materialized_versions(instance, "production_window"), materialized_versions(instance,
                                                                                                       "model_health")
    newest, rerun, oldest = window
    assert rerun == oldest and newest != rerun                # same rows, same version; one row changed, new one
    assert health[0] != health[1]
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("model_health")]
    metadata = event.materialization.metadata
    assert "victim" in metadata["lineage"].value and metadata["code_version"].value == code_version()
    specs = {spec.key.to_user_string(): spec for spec in evaluate_models.specs}
    assert specs["production_window"].code_version == code_version()


def test_an_arriving_inference_file_is_versioned_by_its_bytes(tmp_path):
    from definitions import defs
    from resources import InferenceLogResource
    from sensors.inference_log import inference_sensor

    path = tmp_path / INFERENCE / "churn" / "2026-11-10.parquet"
    path.parent.mkdir(parents=True)

    def tick(cursor: str | None) -> tuple[str, str]:
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                     resources={"drop_folder": InferenceLogResource(root=str(tmp_path))}) as context:
            result = inference_sensor.evaluate_tick(context)
        [event] = [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
        return event.tags["dagster/data_version"], result.cursor

    frame = pd.DataFrame({"timestamp": pd.Timestamp("2026-11-10", tz="UTC"), "prediction_id": ["a", "b"],
                          "prediction": [1.0, 0.0]})
    with dg.instance_for_test() as instance:
        frame.to_parquet(path)
        first, cursor = tick(None)
        assert first == file_version(path) and first != "empty"
        frame.loc[1, "prediction"] = 1.0
        frame.to_parquet(path)
        second, _ = tick(cursor)
    assert second == file_version(path) != first
