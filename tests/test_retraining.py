"""Retraining on a real MLflow (sqlite in tmp_path) and a real drop folder: training sets,
pluggable trainers, challenger registration, calibration drift and recalibration, the cycle."""

from __future__ import annotations

import shutil
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from watchkeeper.inference_log import LABELS, InferenceLog
from watchkeeper.registry import CHAMPION, MONITORED_TAG, TASK_TAG, Registry
from watchkeeper.retraining.calibration import (
    calibration_drifted, calibration_error, expected_calibration_error, recalibrate, reliability,
)
from watchkeeper.retraining.challenger import CHALLENGER, TRAINED_FROM_TAG, ChallengerError, log_reference, retrain
from watchkeeper.retraining.cycle import RECALIBRATE, RETRAIN, PolicyError, RetrainPolicy, run_retraining
from watchkeeper.retraining.gate import PREVIOUS_CHAMPION, PROMOTED
from watchkeeper.retraining.trainers import (
    SklearnPipelineTrainer, TrainerError, available_trainers, fit_checked, load_trainer,
)
from watchkeeper.retraining.training_set import TrainingSetError, build_training_set

FEATURES = ["x0", "x1", "x2", "x3"]
MODEL = "churn"
DAYS = [f"2026-11-{d:02d}" for d in range(1, 7)]


# ---- shared with test_gate.py: generated data, a registered champion, a drop folder ----

def make_frame(n: int, seed: int, concept: str = "before", intercept: float = 0.0) -> pd.DataFrame:
    """Logistic labels from four standard-normal features; after the concept drift, x0's effect flips."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    sign = 1.0 if concept == "before" else -1.0
    logit = 2.0 * sign * X["x0"] - X["x1"] + 0.5 * X["x2"] + intercept
    return X.assign(target=(rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64"))


def register_champion(uri: str, artifacts: Path, train: pd.DataFrame, validation: pd.DataFrame,
                      name: str = MODEL, task: str = "binary") -> str:
    """Register a model the way the demo does (reference artifacts, tags, alias champion)."""
    client = MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    experiment = client.get_experiment_by_name("tests") or client.get_experiment(
        client.create_experiment("tests", artifact_location=artifacts.resolve().as_uri()))
    model = SklearnPipelineTrainer().fit(train, FEATURES, "target", task)
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        log_reference(name, train, validation)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                        signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
                                        registered_model_name=name)
    client.set_registered_model_tag(name, MONITORED_TAG, "true")
    client.set_registered_model_tag(name, TASK_TAG, task)
    client.set_registered_model_alias(name, CHAMPION, str(info.registered_model_version))
    return str(info.registered_model_version)


def write_traffic(root: Path, model, days: list[str], seed: int, label_share: float = 0.8,
                  rows: int = 300, **concept) -> InferenceLog:
    """Production windows scored by `model`, and labels for `label_share` of their rows."""
    log = InferenceLog(root)
    for i, day in enumerate(days):
        frame = make_frame(rows, seed + i, **concept)
        midnight = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        stamps = midnight + pd.to_timedelta(np.sort(np.random.default_rng(i).integers(0, 86_400, rows)), unit="s")
        proba = model.predict_proba(frame[FEATURES])
        window = pd.DataFrame({"timestamp": stamps, "prediction_id": [f"{day}-{j}" for j in range(rows)]})
        window = window.join(frame[FEATURES]).assign(prediction=model.predict(frame[FEATURES]),
                                                     proba_0=proba[:, 0], proba_1=proba[:, 1])
        log.write_window(MODEL, day, window)
        labelled = np.random.default_rng(seed + 100 + i).random(rows) < label_share
        labels = pd.DataFrame({"prediction_id": window["prediction_id"][labelled],
                               "label": frame["target"][labelled], "arrived_at": stamps[labelled]})
        (root / LABELS / MODEL).mkdir(parents=True, exist_ok=True)
        labels.to_parquet(root / LABELS / MODEL / f"{day}.parquet", index=False)
    return log


def aliases(registry: Registry) -> dict[str, str]:
    """Alias -> version as text (MLflow 3.17 returns the versions as ints)."""
    return {a: str(v) for a, v in registry.client.get_registered_model(MODEL).aliases.items()}


@pytest.fixture(scope="module")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An MLflow sqlite database with its schema in place, made once: migrating a new one takes seconds."""
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path, empty_mlflow_db) -> str:
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def world(tmp_path, tracking_uri):
    """A champion (v1) trained before the drift, and six days of labelled traffic after it."""
    uri = tracking_uri
    train, validation = make_frame(1000, 1), make_frame(400, 2)
    register_champion(uri, tmp_path / "artifacts", train, validation)
    registry = Registry(uri)
    champion = registry.champions()[MODEL]
    log = write_traffic(tmp_path / "drop", registry.load_model(champion), DAYS, seed=10, concept="after")
    return registry, champion, log, train


# ---- training set ----

def test_training_set_is_reference_plus_older_labelled_rows_and_holds_out_the_newest(world):
    registry, champion, log, reference = world
    train, evaluation = build_training_set(registry, champion, log, DAYS, holdout_fraction=0.3)
    labelled = pd.concat([log.read_window(MODEL, d) for d in DAYS]).merge(log.read_labels(MODEL), on="prediction_id")
    labelled = labelled.sort_values("timestamp")
    n_holdout = round(len(labelled) * 0.3)
    assert list(train.columns) == list(evaluation.columns) == FEATURES + ["target"]
    assert len(train) == len(reference) + len(labelled) - n_holdout
    assert len(evaluation) == n_holdout
    # the evaluation rows are exactly the newest labelled rows, and none of them is trained on
    np.testing.assert_allclose(evaluation[FEATURES], labelled[FEATURES].tail(n_holdout))
    np.testing.assert_array_equal(evaluation["target"], labelled["label"].tail(n_holdout))
    recent_train = train.iloc[len(reference):]
    assert recent_train.merge(evaluation, on=FEATURES).empty
    pd.testing.assert_frame_equal(train.iloc[:len(reference)], reference)


def test_training_set_bad_input_is_one_line(world):
    registry, champion, log, _ = world
    with pytest.raises(TrainingSetError, match="no production window for 2026-12-01"):
        build_training_set(registry, champion, log, [*DAYS, "2026-12-01"])
    with pytest.raises(TrainingSetError, match="holdout fraction"):
        build_training_set(registry, champion, log, DAYS, holdout_fraction=1.0)


# ---- trainers ----

def test_builtin_trainer_is_the_demo_pipeline():
    frame = make_frame(300, 0)
    model = load_trainer("sklearn_pipeline", seed=3).fit(frame, FEATURES, "target", "binary")
    assert [name for name, _ in model.steps] == ["scale", "model"]
    assert type(model[-1]).__name__ == "LogisticRegression" and model[-1].random_state == 3
    with pytest.raises(TrainerError, match="unknown trainer 'xgboost'; available: .*sklearn_pipeline"):
        load_trainer("xgboost")
    with pytest.raises(TrainerError, match="rejected its params"):
        load_trainer("sklearn_pipeline", depth=3)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution (dist-info on sys.path) declaring two trainers by entry point."""
    (tmp_path / "acme_trainers.py").write_text(textwrap.dedent("""
        from sklearn.tree import DecisionTreeClassifier

        class TreeTrainer:
            trusted_types = ("sklearn.tree._tree.Tree",)

            def __init__(self, max_depth=2):
                self.max_depth = max_depth

            def fit(self, train, features, target, task):
                tree = DecisionTreeClassifier(max_depth=self.max_depth, random_state=0)
                return tree.fit(train[features], train[target])

        class BrokenTrainer:
            def fit(self, train, features, target, task):
                return object()

        class UndeclaredTreeTrainer:
            def fit(self, train, features, target, task):
                return DecisionTreeClassifier(max_depth=2).fit(train[features], train[target])
    """))
    info = tmp_path / "acme_trainers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-trainers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[watchkeeper.trainers]\nacme_tree = acme_trainers:TreeTrainer\n"
                                           "acme_broken = acme_trainers:BrokenTrainer\n"
                                           "acme_undeclared = acme_trainers:UndeclaredTreeTrainer\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_team_adds_a_trainer_through_an_entry_point(plugin):
    assert {"acme_tree", "acme_broken", "sklearn_pipeline"} <= set(available_trainers())
    frame = make_frame(300, 0)
    model = fit_checked(load_trainer("acme_tree", max_depth=3), frame, FEATURES, "target", "binary")
    assert type(model).__name__ == "DecisionTreeClassifier" and model.get_depth() == 3
    with pytest.raises(TrainerError, match="without predict, classes_"):
        fit_checked(load_trainer("acme_broken"), frame, FEATURES, "target", "binary")


# ---- challenger registration ----

def test_retrain_registers_version_2_as_challenger_with_reference_artifacts(world, plugin):
    registry, champion, log, _ = world
    train, evaluation = build_training_set(registry, champion, log, DAYS)
    challenger = retrain(registry.tracking_uri, MODEL, "acme_tree", train, evaluation, {"max_depth": 3})
    assert challenger.version == "2"
    assert aliases(registry) == {CHAMPION: "1", CHALLENGER: "2"}
    version = registry.client.get_model_version(MODEL, "2")
    assert version.tags[TRAINED_FROM_TAG] == "1" and version.run_id == challenger.run_id
    run = registry.client.get_run(challenger.run_id)
    assert run.data.params["trainer"] == "acme_tree" and run.data.params["max_depth"] == "3"
    assert run.data.metrics["accuracy"] == pytest.approx(challenger.metrics["accuracy"].value)
    # the new version's reference frames are what it was trained and evaluated on, readable by the existing code
    as_champion = champion.__class__(MODEL, "2", challenger.run_id, champion.task)
    logged_train, logged_validation = registry.reference_frames(as_champion)
    pd.testing.assert_frame_equal(logged_train, train)
    pd.testing.assert_frame_equal(logged_validation, evaluation)
    assert registry.load_model(as_champion).native.get_depth() == 3


def test_a_model_with_types_nobody_vouched_for_is_refused_in_one_line(world, plugin):
    registry, champion, log, _ = world
    train, evaluation = build_training_set(registry, champion, log, DAYS)
    with pytest.raises(ChallengerError, match=r"untrusted types.*sklearn\.tree\._tree\.Tree") as error:
        retrain(registry.tracking_uri, MODEL, "acme_undeclared", train, evaluation)
    assert "\n" not in str(error.value)
    assert CHALLENGER not in aliases(registry)


# ---- calibration ----

def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return p, (rng.random(n) < p).astype(int), rng


def test_ece_matches_sklearn_calibration_curve():
    p, y, _ = calibrated(3000, 0)
    confidence, correct = np.maximum(p, 1 - p), ((p > 0.5) == y).astype(float)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=10, strategy="uniform")
    counts = np.histogram(confidence, bins=np.linspace(0, 1, 11))[0]
    expected = np.sum(counts[counts > 0] / len(p) * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(confidence, correct, 10) == pytest.approx(expected)


def test_calibration_drift_detected_on_cubed_probabilities_not_on_calibrated_ones():
    p, y, _ = calibrated(2000, 1)
    honest, evidence = calibration_drifted(np.column_stack([1 - p, p]), y, [0, 1])
    assert not honest and evidence["p_value"] > 0.05 and evidence["calibration_error"] < 0.02
    distorted, evidence = calibration_drifted(np.column_stack([1 - p**3, p**3]), y, [0, 1])
    assert distorted and evidence["p_value"] < 0.01 and evidence["calibration_error"] > 0.1
    assert evidence["brier"] == pytest.approx(brier_score_loss(y, p**3))


def test_debiased_calibration_error_is_unbiased_where_the_plain_estimate_is_not():
    """Kumar et al. (2019): on 100-row samples the debiased squared error averages to the binned
    squared error of the population (here 1M rows), while the plain estimate is inflated by bin noise."""
    def squared_errors(n: int, seed: int) -> tuple[float, float]:
        p, y, _ = calibrated(n, seed)
        confidence, correct = np.maximum(p**2, 1 - p**2), ((p**2 > 0.5) == y).astype(float)
        plain = reliability(np.column_stack([1 - p**2, p**2]), y, [0, 1], n_boot=1)["plain_squared_error"]
        return calibration_error(confidence, correct) ** 2, plain

    population, _ = squared_errors(1_000_000, 0)
    small = np.array([squared_errors(100, seed) for seed in range(1, 1001)])
    assert small[:, 0].mean() == pytest.approx(population, rel=0.1)
    assert small[:, 1].mean() > 1.5 * population


def test_a_model_miscalibrated_from_the_start_has_not_drifted():
    """The baseline is the model's own calibration on a (small) reference validation set."""
    (p, y, _), (p_ref, y_ref, _) = calibrated(2000, 1), calibrated(200, 2)
    cubed, honest = np.column_stack([1 - p**3, p**3]), np.column_stack([1 - p_ref, p_ref])
    always_cubed = np.column_stack([1 - p_ref**3, p_ref**3])
    drifted, evidence = calibration_drifted(cubed, y, [0, 1], reference=(always_cubed, y_ref))
    assert evidence["reference"]["calibration_error"] > 0.1   # as miscalibrated then as now
    assert not drifted and evidence["p_value"] < 0.01 and evidence["increase"] < evidence["min_increase"]
    assert calibration_drifted(cubed, y, [0, 1], reference=(honest, y_ref))[0]


def test_calibration_test_holds_its_level_when_calibrated():
    """Under calibration the p-value is uniform: P(p < 0.1) = 0.1 (binomial band over 200 samples)."""
    p_values = []
    for seed in range(200):
        p, y, _ = calibrated(500, 1000 + seed)
        _, evidence = calibration_drifted(np.column_stack([1 - p, p]), y, [0, 1], n_boot=200, seed=seed)
        p_values.append(evidence["p_value"])
    assert 8 <= sum(v < 0.1 for v in p_values) <= 34   # Binomial(200, 0.1): 99.9% band


def test_recalibration_improves_brier_on_held_out_recent_rows():
    """Same inputs, a lower base rate: the champion ranks well but over-predicts the positive class."""
    model = SklearnPipelineTrainer().fit(make_frame(2000, 0), FEATURES, "target", "binary")
    recent, later = make_frame(2000, 1, intercept=-2.0), make_frame(2000, 2, intercept=-2.0)
    drifted, _ = calibration_drifted(model.predict_proba(recent[FEATURES]), recent["target"], [0, 1])
    assert drifted
    fixed = recalibrate(model, recent[FEATURES], recent["target"], "isotonic")
    before = brier_score_loss(later["target"], model.predict_proba(later[FEATURES])[:, 1])
    after = brier_score_loss(later["target"], fixed.predict_proba(later[FEATURES])[:, 1])
    assert after < 0.8 * before
    assert not calibration_drifted(fixed.predict_proba(later[FEATURES]), later["target"], [0, 1])[0]


# ---- the cycle the retrain_model job runs ----

def test_cycle_retrains_after_concept_drift_and_promotes(world):
    registry, champion, log, _ = world
    outcome = run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(margin=0.05))
    assert [a.action for a in outcome.attempts] == [RETRAIN] and outcome.final.status == PROMOTED
    assert outcome.final.decision.difference.lower > 0.05
    assert aliases(registry) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert str(registry.champions()[MODEL].version) == "2"   # what the registry sensor will see


def test_a_policy_that_cannot_work_fails_before_anything_is_registered(world):
    registry, _, log, _ = world
    with pytest.raises(PolicyError, match="approval must be 'auto' or 'ticket', got 'tiket'"):
        RetrainPolicy(approval="tiket")
    with pytest.raises(PolicyError, match="metric 'mae' does not apply to binary"):
        run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(metric="mae"))
    assert len(registry.client.search_model_versions(f"name='{MODEL}'")) == 1


def test_cycle_recalibrates_first_when_inputs_are_stable(tmp_path, tracking_uri):
    uri = tracking_uri
    register_champion(uri, tmp_path / "artifacts", make_frame(1000, 1), make_frame(400, 2))
    registry = Registry(uri)
    champion = registry.champions()[MODEL]
    log = write_traffic(tmp_path / "drop", registry.load_model(champion), DAYS, seed=10, intercept=-2.0)
    outcome = run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(metric="brier"), inputs_stable=True)
    assert outcome.calibration["drifted"]
    assert [a.action for a in outcome.attempts] == [RECALIBRATE] and outcome.final.status == PROMOTED
    version = registry.client.get_model_version(MODEL, outcome.final.challenger.version)
    assert version.tags["watchkeeper.action"] == RECALIBRATE
    assert type(registry.load_model(registry.champions()[MODEL]).native).__name__ == "CalibratedClassifierCV"


def test_under_concept_drift_the_challenger_learns_from_recent_rows_only(world):
    """`auto`: the old concept's reference rows are not mixed in, nor logged as the next reference."""
    from watchkeeper.registry import Champion
    from watchkeeper.retraining.training_set import RECENT_ONLY, TrainingSetError, training_rows

    registry, champion, log, train = world
    recent, _ = build_training_set(registry, champion, log, DAYS, policy=RECENT_ONLY)
    mixed, _ = build_training_set(registry, champion, log, DAYS)
    assert len(mixed) == len(train) + len(recent)
    with pytest.raises(TrainingSetError, match="unknown training set policy 'newest'"):
        training_rows(train, recent, "newest")
    outcome = run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(margin=0.05), concept_drift=True)
    assert outcome.training_set == RECENT_ONLY and outcome.final.status == PROMOTED
    version = outcome.final.challenger
    logged, _ = registry.reference_frames(Champion(MODEL, version.version, version.run_id, "binary"))
    pd.testing.assert_frame_equal(logged, recent)          # the new reference is the new concept, alone


def test_the_cycle_is_audited_and_artifacts_outside_the_residency_policy_are_never_logged(world, tmp_path,
                                                                                          monkeypatch):
    from watchkeeper.retraining.cycle import audit_outcome
    from watchkeeper.security.audit import GATE, PROMOTED as PROMOTED_ENTRY, RETRAINED, Actor
    from watchkeeper.security.residency import POLICY_ENV, ResidencyError
    from watchkeeper.store import MonitoringStore

    registry, _, log, _ = world
    policy = tmp_path / "residency.yaml"   # the tracking database is allowed, the artifact folder is not
    policy.write_text("version: 1\nlocations: {db: {uris: ['sqlite:*']}}\n"
                      "allowed: {rows: [db], aggregates: [db], alerts: [db]}\n")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    with pytest.raises(ResidencyError, match="rows for MLflow artifacts may not go to file://"):
        run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(margin=0.05))
    assert len(registry.client.search_model_versions(f"name='{MODEL}'")) == 1   # nothing registered
    monkeypatch.delenv(POLICY_ENV)
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    outcome = run_retraining(registry, log, MODEL, DAYS, RetrainPolicy(margin=0.05))
    audit_outcome(store, outcome, Actor("dagster:retrain_model", "run-9"))
    entries = list(store.audit_entries())
    assert [e.action for e in entries] == [RETRAINED, GATE, PROMOTED_ENTRY]
    assert all((e.subject, e.run_id) == (MODEL, "run-9") for e in entries)
    assert entries[2].details == {"version": str(outcome.final.challenger.version), "replaces": "1"}
