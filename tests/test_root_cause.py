"""Root cause: importance-weighted drift ranks the feature the model relies on first, and a
degradation is told apart as covariate (inputs moved) or concept (the relation moved).

A real scikit-learn model is trained on generated data where the label depends on x1 only;
windows go through the real drift engine and the real metrics with their bootstrap intervals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression

from watchkeeper.drift import evaluate_drift
from watchkeeper.performance import BINARY, compute_metrics, is_degraded
from watchkeeper.profile import fit_profile
from watchkeeper.root_cause import COVARIATE, CONCEPT, MIXED, UNKNOWN, feature_importance, rank_causes

FEATURES = ["x1", "x2", "x3"]


def inputs(rng: np.random.Generator, n: int, x1_sd: float = 1.0, x1_shift: float = 0.0,
           x3_shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"x1": rng.normal(x1_shift, x1_sd, n), "x2": rng.normal(0, 1, n),
                         "x3": rng.normal(x3_shift, 1, n)})


def labels(rng: np.random.Generator, X: pd.DataFrame, slope: float = 3.0) -> np.ndarray:
    """y depends on x1 alone: P(y = 1) = sigmoid(slope * x1)."""
    return (rng.random(len(X)) < 1 / (1 + np.exp(-slope * X["x1"].to_numpy()))).astype(int)


def accuracy(y_true, y_pred):
    return next(m for m in compute_metrics(BINARY, y_true, y_pred) if m.name == "accuracy")


@dataclass
class World:
    """A model version and its reference: what root cause is computed against."""

    rng: np.random.Generator
    model: LogisticRegression
    profile: object
    importance: dict[str, float]
    reference: object  # the reference accuracy with its interval

    def observe(self, X: pd.DataFrame, slope: float = 3.0) -> tuple[dict, bool]:
        """The window's drift report and whether its accuracy degraded beyond 0.05 (upper bound below)."""
        window = accuracy(labels(self.rng, X, slope), self.model.predict(X))
        return evaluate_drift(self.profile, X).to_dict(), is_degraded(window, self.reference, 0.05)

    def causes(self, drift: dict, degraded: bool):
        return rank_causes(drift, self.importance, None, covariate_drift=drift["dataset_drift"],
                           performance_degraded=degraded)


@pytest.fixture(scope="module")
def world() -> World:
    rng = np.random.default_rng(0)
    train, validation = inputs(rng, 4000), inputs(rng, 2000)
    model = LogisticRegression().fit(train, labels(rng, train))
    y_validation = labels(rng, validation)
    importance = feature_importance(model, validation, y_validation, scoring="accuracy")
    return World(rng, model, fit_profile(train), importance, accuracy(y_validation, model.predict(validation)))


def test_importance_is_sklearn_permutation_importance_normalised(world):
    model, importance = world.model, world.importance
    assert importance["x1"] > 0.9 and sum(importance.values()) == pytest.approx(1.0)
    X = inputs(np.random.default_rng(1), 1000)
    y = labels(np.random.default_rng(2), X)
    ours = feature_importance(model, X, y, scoring="accuracy", n_repeats=3, seed=7)
    theirs = np.clip(permutation_importance(model, X, y, scoring="accuracy", n_repeats=3,
                                            random_state=7).importances_mean, 0, None)
    assert list(ours.values()) == pytest.approx(list(theirs / theirs.sum()))


def test_a_small_drift_in_an_important_feature_ranks_above_a_large_one_in_an_unimportant_feature(world):
    drift, _ = world.observe(inputs(world.rng, 2000, x1_shift=0.3, x3_shift=1.0))
    effect = {f["name"]: f["effect_size"] for f in drift["features"]}
    assert set(drift["drifted_features"]) == {"x1", "x3"} and effect["x3"] > 2 * effect["x1"]
    cause = world.causes(drift, degraded=False)
    assert [f["name"] for f in cause.features] == ["x1", "x3"]
    assert cause.features[0]["score"] == pytest.approx(effect["x1"] * world.importance["x1"])
    assert cause.kind == UNKNOWN and "did not degrade" in cause.explanation


def test_inputs_moving_where_the_model_is_unsure_is_covariate_shift(world):
    drift, degraded = world.observe(inputs(world.rng, 2000, x1_sd=0.2))  # same relation, x1 crowds the boundary
    cause = world.causes(drift, degraded)
    assert degraded and cause.kind == COVARIATE and cause.features[0]["name"] == "x1"
    assert "covariate shift" in cause.explanation and "x1" in cause.explanation
    json.dumps(cause.to_dict())


def test_same_inputs_with_a_new_relation_is_concept_drift(world):
    drift, degraded = world.observe(inputs(world.rng, 2000), slope=-3.0)
    cause = world.causes(drift, degraded)
    assert degraded and not drift["drifted_features"] and cause.kind == CONCEPT and cause.features == []


def test_drift_only_in_an_ignored_feature_does_not_explain_a_degradation(world):
    drift, degraded = world.observe(inputs(world.rng, 2000, x3_shift=1.5), slope=-3.0)
    cause = world.causes(drift, degraded)
    assert drift["drifted_features"] == ["x3"] and degraded and cause.kind == CONCEPT
    assert "little importance: x3" in cause.explanation


def test_mixed_and_joint_shifts():
    drift = {"features": [{"name": "x1", "effect_size": 0.4, "effect_metric": "wasserstein", "drifted": True},
                          {"name": "x2", "effect_size": 0.01, "effect_metric": "wasserstein", "drifted": False}]}
    importance = {"x1": 0.7, "x2": 0.3}
    assert rank_causes(drift, importance, None, True, True, concept_drift=True).kind == MIXED
    assert rank_causes(drift, importance, None, True, True, concept_drift=False).kind == COVARIATE
    quiet = {"features": [dict(f, drifted=False) for f in drift["features"]]}
    joint = rank_causes(quiet, importance, None, covariate_drift=True, performance_degraded=True)
    assert joint.kind == COVARIATE and "jointly" in joint.explanation
    assert rank_causes(quiet, importance, None, covariate_drift=False, performance_degraded=True).kind == CONCEPT


def test_segments_that_fell_most_come_first():
    drift = {"features": []}
    cause = rank_causes(drift, {}, {"US": -0.02, "EU": -0.12, "APAC": 0.01}, False, True)
    assert [s["segment"] for s in cause.segments] == ["EU", "US", "APAC"]
    assert "EU (-0.120), US (-0.020)." in cause.explanation and "APAC" not in cause.explanation
    errors = rank_causes(drift, {}, {"a": -1.0, "b": 5.0}, False, True, higher_is_better=False)
    assert [s["segment"] for s in errors.segments] == ["b", "a"]


def test_bad_input_is_a_one_line_error(world):
    model = world.model
    drift = {"features": [{"name": "x9", "effect_size": 0.4, "drifted": True}]}
    with pytest.raises(ValueError, match="no entry for drifted features: x9"):
        rank_causes(drift, {"x1": 1.0}, None, True, True)
    with pytest.raises(ValueError, match="DataFrame with feature names"):
        feature_importance(model, np.zeros((3, 3)), [0, 1, 0])
    with pytest.raises(ValueError, match="equal length"):
        feature_importance(model, pd.DataFrame({c: [0.0] for c in FEATURES}), [0, 1])
