"""Any MLflow model: LightGBM's own flavour and custom pyfunc models (with and without probabilities) are
profiled, evaluated, gated and retrained like scikit-learn ones, on a real MLflow (sqlite) and drop folder."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import ROOT
from test_retraining import (  # noqa: F401  (empty_mlflow_db and tracking_uri are fixtures)
    DAYS, FEATURES, MODEL, aliases, empty_mlflow_db, make_frame, tracking_uri,
)
from watchkeeper.alerting.policy import load_policy
from watchkeeper.config import MonitoringConfig
from watchkeeper.flavors import LIGHTGBM, NO_PROBABILITIES, PYFUNC, ModelLoadError
from watchkeeper.inference_log import INFERENCE, LABELS, InferenceLog
from watchkeeper.monitor import WindowMonitor
from watchkeeper.reference import build_reference
from watchkeeper.registry import CHAMPION, MONITORED_TAG, TASK_TAG, Registry
from watchkeeper.retraining.challenger import log_reference
from watchkeeper.retraining.cycle import RETRAIN, RetrainPolicy, run_retraining
from watchkeeper.retraining.gate import PROMOTED, GateError, evaluate_gate
from watchkeeper.retraining.lightgbm_trainer import LightGBMTrainer
from watchkeeper.retraining.trainers import available_trainers, load_trainer
from watchkeeper.store import MonitoringStore

RULE_MODEL = Path(__file__).parent / "fixtures" / "linear_rule_model.py"
RULE = {"x0": 2.0, "x1": -1.0, "x2": 0.5}   # the generating rule of make_frame before the concept drift


def log_lightgbm(train: pd.DataFrame, name: str):
    trainer = LightGBMTrainer(n_estimators=60)
    return trainer.log_model(trainer.fit(train, FEATURES, "target", "binary"), train[FEATURES], name)


def log_rule(probabilities: bool):
    def log(train: pd.DataFrame, name: str):
        return mlflow.pyfunc.log_model(name="model", python_model=str(RULE_MODEL), pip_requirements=["mlflow"],
                                       model_config={"weights": RULE, "probabilities": probabilities},
                                       input_example=train[FEATURES].head(3), registered_model_name=name)
    return log


class PickledRule(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return (model_input["x0"] > 0).astype("int64")


def log_pickled(train: pd.DataFrame, name: str):
    return mlflow.pyfunc.log_model(name="model", python_model=PickledRule(), pip_requirements=["mlflow"],
                                   registered_model_name=name)


LOGGERS = {"lightgbm": log_lightgbm, "rule_with_proba": log_rule(True), "rule_labels_only": log_rule(False)}


def register(uri: str, artifacts: Path, log, name: str = MODEL) -> str:
    """A champion registered as the demo registers its models, but stored by `log` in its own flavour."""
    client = MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    experiment = client.get_experiment_by_name("tests") or client.get_experiment(
        client.create_experiment("tests", artifact_location=artifacts.resolve().as_uri()))
    train, validation = make_frame(1000, 1), make_frame(400, 2)
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        log_reference(name, train, validation)
        info = log(train, name)
    client.set_registered_model_tag(name, MONITORED_TAG, "true")
    client.set_registered_model_tag(name, TASK_TAG, "binary")
    client.set_registered_model_alias(name, CHAMPION, str(info.registered_model_version))
    return str(info.registered_model_version)


def write_inference(root: Path, model, days: list[str], seed: int = 10) -> InferenceLog:
    """Predictions of `model` after the concept drift, as serving logs them (probabilities when it has
    them), and labels for 80% of them, arriving the same day."""
    for i, day in enumerate(days):
        frame = make_frame(300, seed + i, concept="after")
        midnight = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        stamps = midnight + pd.to_timedelta(np.sort(np.random.default_rng(i).integers(0, 86_000, 300)), unit="s")
        window = pd.DataFrame({"timestamp": stamps, "prediction_id": [f"{day}-{j}" for j in range(300)]})
        window = window.join(frame[FEATURES]).assign(prediction=model.predict(frame[FEATURES]))
        if model.has_proba:
            window = window.join(pd.DataFrame(model.predict_proba(frame[FEATURES]), columns=["proba_0", "proba_1"]))
        labelled = np.random.default_rng(seed + 100 + i).random(300) < 0.8
        for stream, rows in ((INFERENCE, window), (LABELS, pd.DataFrame({
                "prediction_id": window["prediction_id"][labelled], "label": frame["target"][labelled],
                "arrived_at": stamps[labelled]}))):
            (root / stream / MODEL).mkdir(parents=True, exist_ok=True)
            rows.to_parquet(root / stream / MODEL / f"{day}.parquet", index=False)
    return InferenceLog(root)


def profiled(registry: Registry, store: MonitoringStore):
    """What the reference_profile asset does for the champion: load, build, store."""
    champion = registry.champions()[MODEL]
    reference = build_reference(MODEL, champion.version, "binary", *registry.reference_frames(champion),
                                registry.load_model(champion))
    store.put_profile(MODEL, champion.version, "binary", *reference.to_stored())
    return reference


@pytest.mark.parametrize("kind", sorted(LOGGERS))
def test_every_flavour_is_profiled_with_what_it_can_tell(tmp_path, tracking_uri, kind):
    register(tracking_uri, tmp_path / "artifacts", LOGGERS[kind])
    registry = Registry(tracking_uri)
    model = registry.load_model(registry.champions()[MODEL])
    reference = profiled(registry, MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"))
    assert model.flavor == (LIGHTGBM if kind == "lightgbm" else PYFUNC)
    assert reference.flavor == model.flavor and reference.classes == [0, 1]
    assert reference.metrics["accuracy"].value > 0.75          # the rule and the boosted trees learnt make_frame
    assert sum(reference.importance.values()) == pytest.approx(1.0)
    assert max(reference.importance, key=reference.importance.get) == "x0"
    if kind == "rule_labels_only":
        assert not model.has_proba and not reference.probabilities and reference.cbpe is None
        assert reference.metrics["roc_auc"].value is None and reference.proba_columns() == []
        assert NO_PROBABILITIES in reference.limits()[0] and "roc_auc" in reference.limits()[0]
    else:
        assert model.has_proba and reference.probabilities and reference.cbpe is not None
        assert reference.metrics["roc_auc"].value > 0.8 and reference.limits() == []


def test_a_pickled_custom_model_is_refused_in_one_line(tmp_path, tracking_uri):
    register(tracking_uri, tmp_path / "artifacts", log_pickled)
    registry = Registry(tracking_uri)
    with pytest.raises(ModelLoadError, match="loads no pickle: log it as a model from code"):
        registry.load_model(registry.champions()[MODEL])


def test_the_gate_judges_a_label_only_model_on_labels_and_says_why_not_on_auc(tmp_path, tracking_uri):
    register(tracking_uri, tmp_path / "artifacts", log_rule(False))
    registry = Registry(tracking_uri)
    champion = registry.champions()[MODEL]
    rule = registry.load_model(champion)
    boosted = load_trainer("lightgbm", n_estimators=60).fit(make_frame(2000, 3, concept="after"), FEATURES,
                                                            "target", "binary")
    after = make_frame(1500, 50, concept="after")
    decision = evaluate_gate("binary", rule, boosted, after, FEATURES, margin=0.05)
    assert decision.metric == "accuracy" and decision.promote
    with pytest.raises(GateError, match="roc_auc needs class probabilities; the champion model gives none"):
        evaluate_gate("binary", rule, boosted, after, FEATURES, metric="roc_auc")


def test_lightgbm_is_a_trainer_installed_through_the_entry_point():
    assert "lightgbm" in available_trainers()
    assert isinstance(load_trainer("lightgbm", num_leaves=7), LightGBMTrainer)


@pytest.mark.parametrize("kind, trainer", [("lightgbm", "lightgbm"), ("rule_labels_only", "sklearn_pipeline")])
def test_a_non_sklearn_champion_is_profiled_evaluated_gated_and_retrained(tmp_path, tracking_uri, kind, trainer):
    """End to end on real MLflow: the champion's windows after a concept drift are evaluated, and the
    retrained challenger wins the gate and becomes the champion, loaded back in its own flavour."""
    register(tracking_uri, tmp_path / "artifacts", LOGGERS[kind])
    registry, store = Registry(tracking_uri), MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    reference = profiled(registry, store)
    log = write_inference(tmp_path / "drop", registry.load_model(registry.champions()[MODEL]), DAYS)
    monitor = WindowMonitor(store, log, MonitoringConfig(), load_policy(ROOT / "deploy" / "alerting.demo.yaml"))
    outcomes = [o for day in DAYS for o in monitor.evaluate(day)]
    assert all(not o.failures and o.rows == 300 for o in outcomes)
    last = outcomes[-1]
    realised = {m.name: m.value for m in last.metrics.realised}
    assert realised["accuracy"] < reference.metrics["accuracy"].value - 0.2     # the concept drift shows
    assert (realised["roc_auc"] is None) == (kind == "rule_labels_only")
    assert bool(last.metrics.estimated) == reference.probabilities              # CBPE only with probabilities
    assert last.verdict.status != "failed"

    outcome = run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(trainer=trainer), inputs_stable=True)
    assert outcome.final.action == RETRAIN and outcome.final.status == PROMOTED
    if kind == "rule_labels_only":
        assert outcome.calibration == {"skipped": NO_PROBABILITIES}
    assert aliases(registry)[CHAMPION] == outcome.final.challenger.version
    promoted = registry.load_model(registry.champions()[MODEL])
    assert promoted.flavor == ("lightgbm" if trainer == "lightgbm" else "sklearn") and promoted.has_proba
