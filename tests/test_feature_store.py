"""Feast, offline: a reference from a Feast training set, windows whose features are joined from Feast,
and the Feast sensor starting a re-profile and evaluations after `feast apply` and materialisation.

A real Feast repository (local provider, file offline store, SQLite online store and registry) is
generated in tmp_path; MLflow is real (sqlite); the sensor runs against a real Dagster instance."""

from __future__ import annotations

import struct
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature

from conftest import ROOT
from definitions import defs
from monitoring_assets.reference import reference_profile
from resources import FeastResource, MlflowRegistryResource, MonitoringConfigResource, MonitoringStoreResource
from sensors.feature_store import feast_sensor
from test_encryption import kms  # noqa: F401  (fixture)
from test_retraining import empty_mlflow_db, tracking_uri  # noqa: F401  (fixtures)
from watchkeeper.alerting.policy import load_policy
from watchkeeper.config import MonitoringConfig
from watchkeeper.demo import feast_repo
from watchkeeper.demo.feast_repo import KEY, SERVICE, VIEW
from watchkeeper.feature_store import EVENT_TIMESTAMP, FEATURE_SERVICE_TAG, FeastFeatures, FeatureStoreError
from watchkeeper.inference_log import INFERENCE, InferenceLog
from watchkeeper.monitor import WindowMonitor
from watchkeeper.reference import build_reference
from watchkeeper.registry import CHAMPION, MONITORED_TAG, TASK_TAG, Registry
from watchkeeper.retraining.challenger import log_reference
from watchkeeper.retraining.trainers import SklearnPipelineTrainer
from watchkeeper.security.kms import KMS_DIR_ENV
from watchkeeper.security.sealed_files import is_sealed_file
from watchkeeper.store import MonitoringStore

MODEL = "churn_feast"
START, DAYS, SHIFT_FROM = date(2026, 10, 20), 30, date(2026, 11, 8)
FEATURES = [f"{VIEW}:{name}" for name in feast_repo.FEATURES]   # as Feast names them


@pytest.fixture
def world(tmp_path, tracking_uri):
    """A Feast repository, and a champion trained on its training set whose run logged entity rows only."""
    features = feast_repo.write_repo(tmp_path / "feast", START, DAYS, shift_from=SHIFT_FROM)
    rows = feast_repo.feature_rows(START, DAYS, shift_from=SHIFT_FROM)
    train_entities = feast_repo.entity_rows(START, 11, 1500, seed=1, features=rows)
    validation_entities = feast_repo.entity_rows(START, 11, 600, seed=2, features=rows)
    train = features.training_set(SERVICE, train_entities, "target")
    model = SklearnPipelineTrainer().fit(train, FEATURES, "target", "binary")
    client = MlflowClient(tracking_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = client.create_experiment("feast", artifact_location=(tmp_path / "artifacts").resolve().as_uri())
    with mlflow.start_run(experiment_id=experiment):
        log_reference(MODEL, train_entities, validation_entities)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                        signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
                                        registered_model_name=MODEL)
    for tag, value in ((MONITORED_TAG, "true"), (TASK_TAG, "binary"), (FEATURE_SERVICE_TAG, SERVICE)):
        client.set_registered_model_tag(MODEL, tag, value)
    client.set_registered_model_alias(MODEL, CHAMPION, str(info.registered_model_version))
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    return features, rows, train_entities, model, Registry(tracking_uri, features), store


def profile(registry: Registry, store: MonitoringStore):
    champion = registry.champions()[MODEL]
    reference = build_reference(MODEL, champion.version, champion.task, *registry.reference_frames(champion),
                                registry.load_model(champion), feature_service=champion.feature_service)
    store.put_profile(MODEL, champion.version, champion.task, *reference.to_stored())
    return reference


def test_the_offline_store_is_sealed_at_rest_and_feast_reads_it_only_with_the_key(tmp_path, kms, monkeypatch):
    features = feast_repo.write_repo(tmp_path / "feast", START, 3)
    rows = feast_repo.feature_rows(START, 3)
    source = tmp_path / "feast" / "data" / f"{VIEW}.parquet"
    planted = rows.loc[7, "x0"]                      # customer 7 on the first day
    assert is_sealed_file(source) and struct.pack("<d", planted) not in source.read_bytes()
    with pytest.raises(Exception):
        pq.ParquetFile(source)                       # not Parquet to anyone without the key
    asked = pd.DataFrame({KEY: [7], EVENT_TIMESTAMP: [pd.Timestamp(START, tz="UTC") + timedelta(hours=5)]})
    assert features.join(SERVICE, asked).loc[0, f"{VIEW}:x0"] == planted       # historical retrieval
    feast_repo.materialize(tmp_path / "feast", START, START + timedelta(days=3))  # the online store's pull
    online = features.store.get_online_features(features=[f"{VIEW}:x0"], entity_rows=[{KEY: 7}]).to_dict()
    assert online["x0"] == [rows.loc[rows[KEY] == 7, "x0"].iloc[-1]]           # customer 7's newest day
    monkeypatch.delenv(KMS_DIR_ENV)
    with pytest.raises(FeatureStoreError, match="no key is configured"):
        FeastFeatures(tmp_path / "feast").join(SERVICE, asked)


def test_the_reference_is_the_point_in_time_training_set_of_the_feature_service(world, tracking_uri):
    features, rows, train_entities, _, registry, store = world
    champion = registry.champions()[MODEL]
    assert champion.feature_service == SERVICE
    train, validation = registry.reference_frames(champion)
    assert list(train.columns) == [*FEATURES, "target"] and len(train) == len(train_entities)
    # point in time: each row has the features its customer had on that row's day, not a later day's
    expected = train_entities.assign(day=train_entities[EVENT_TIMESTAMP].dt.floor("D")).merge(
        rows.rename(columns={EVENT_TIMESTAMP: "day"}), on=[KEY, "day"], how="left")
    np.testing.assert_allclose(train[FEATURES].to_numpy(), expected[list(feast_repo.FEATURES)].to_numpy())
    np.testing.assert_array_equal(train["target"], train_entities["target"])
    reference = profile(registry, store)
    assert reference.features == FEATURES and reference.feature_service == SERVICE
    assert list(reference.profile.features) == FEATURES
    assert reference.metrics["accuracy"].value > 0.75
    with pytest.raises(FeatureStoreError, match="no Feast repository is configured"):
        Registry(tracking_uri).reference_frames(champion)


def write_window(root: Path, model, features, day: date, n: int = 400, unknown: int = 3) -> None:
    """What serving logs for a model fed by Feast: entity keys, time, prediction; no feature values.
    `unknown` rows are of customers Feast has never seen."""
    entities = feast_repo.entity_rows(day, 1, n, seed=day.toordinal())
    entities.loc[entities.index[:unknown], KEY] = 10_000 + np.arange(unknown)
    served = features.join(SERVICE, entities).fillna(0.0)
    proba = model.predict_proba(served[FEATURES])
    window = pd.DataFrame({"timestamp": entities[EVENT_TIMESTAMP], "prediction_id": [f"{day}-{i}" for i in range(n)],
                           KEY: entities[KEY], "prediction": model.predict(served[FEATURES]),
                           "proba_0": proba[:, 0], "proba_1": proba[:, 1]})
    (root / INFERENCE / MODEL).mkdir(parents=True, exist_ok=True)
    window.to_parquet(root / INFERENCE / MODEL / f"{day}.parquet", index=False)


def test_a_window_of_entity_keys_gets_its_features_from_feast_and_drift_names_them_as_feast(world, tmp_path):
    features, _, _, model, registry, store = world
    profile(registry, store)
    before, after = date(2026, 11, 2), date(2026, 11, 10)
    for day in (before, after):
        write_window(tmp_path / "drop", model, features, day)
    log = InferenceLog(tmp_path / "drop")
    monitor = WindowMonitor(store, log, MonitoringConfig(), load_policy(ROOT / "deploy" / "alerting.demo.yaml"),
                            features=features)
    quiet, shifted = (monitor.evaluate(day.isoformat())[0] for day in (before, after))
    assert not quiet.failures and quiet.rows == 400                      # every row kept, the unknown ones too
    assert "3 rows found no feature values in Feast (no feature row within the views' TTL)" in quiet.problems
    kept = log.read_window(MODEL, before.isoformat())
    assert set(FEATURES) <= set(kept.columns) and int(kept[FEATURES[0]].isna().sum()) == 3
    assert {f["name"] for f in quiet.drift["features"]} == set(FEATURES) and not quiet.drift["drifted_features"]
    assert shifted.drift["drifted_features"] == [f"{VIEW}:x0"]            # the shifted feature, named as Feast does
    # without a feature store, the Feast-fed model's window fails, saying why
    alone = WindowMonitor(store, log, MonitoringConfig()).evaluate(before.isoformat())[0]
    assert "no Feast repository is configured" in alone.failures["window"]


def evaluate(instance: dg.DagsterInstance, cursor: str | None, **resources) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                                 resources=resources) as context:
        return feast_sensor.evaluate_tick(context)


def test_the_feast_sensor_reprofiles_after_apply_and_evaluates_after_materialisation(world, tmp_path, tracking_uri):
    features, _, _, _, registry, store = world
    profile(registry, store)
    resources = {"feature_store": FeastResource(repo_path=str(features.repo_path)),
                 "monitoring_store": MonitoringStoreResource(url=f"sqlite:///{tmp_path / 'monitoring.db'}")}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("models", [MODEL])              # as the registry sensor did
        first = evaluate(instance, None, **resources)
        assert not first.run_requests and "first look: 1 feature views recorded" in first.skip_message
        assert not evaluate(instance, first.cursor, **resources).run_requests        # nothing changed

        feast_repo.apply(features.repo_path, ttl_days=3)                              # `feast apply`, new TTL
        applied = evaluate(instance, first.cursor, **resources)
        assert [(r.job_name, r.partition_key) for r in applied.run_requests] == [("profile_model", MODEL)]

        feast_repo.materialize(features.repo_path, date(2026, 11, 1), date(2026, 11, 3))
        materialised = evaluate(instance, applied.cursor, **resources)
        assert [(r.job_name, r.partition_key) for r in materialised.run_requests] == [
            ("evaluate_window", "2026-11-01"), ("evaluate_window", "2026-11-02")]
        assert not evaluate(instance, materialised.cursor, **resources).run_requests

        # the requested re-profile runs for real: the reference is joined again from the applied definition
        result = dg.materialize([reference_profile], partition_key=applied.run_requests[0].partition_key,
                                instance=instance, resources={**resources,
                                                              "monitoring_config": MonitoringConfigResource(path=""),
                                                              "mlflow_registry": MlflowRegistryResource(
                                                                  tracking_uri=tracking_uri)})
        assert result.success
        metadata = result.asset_materializations_for_node("reference_profile")[0].metadata
        assert metadata["feature_service"].value == SERVICE and VIEW + ":x0" in metadata["features"].value


def test_the_feast_sensor_skips_without_a_repository_and_names_a_model_whose_service_is_gone(world, tmp_path):
    features, _, _, _, registry, store = world
    profile(registry, store)
    with dg.instance_for_test() as instance:
        none = evaluate(instance, None, feature_store=FeastResource(),
                        monitoring_store=MonitoringStoreResource(url=f"sqlite:///{tmp_path / 'monitoring.db'}"))
        assert "no Feast repository is configured" in none.skip_message
        from feast import FeatureStore
        FeatureStore(repo_path=str(features.repo_path)).delete_feature_service(SERVICE)
        tick = evaluate(instance, None, feature_store=FeastResource(repo_path=str(features.repo_path)),
                        monitoring_store=MonitoringStoreResource(url=f"sqlite:///{tmp_path / 'monitoring.db'}"))
        assert f"skipped 1 Feast-fed models: '{MODEL}': feature service '{SERVICE}'" in tick.skip_message
