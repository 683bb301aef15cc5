"""CBPE must track realised performance when only the features move, and part from it when
the relation between features and labels moves (concept drift)."""

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from watchkeeper.estimation import ESTIMATED_METRICS, CBPE, IsotonicCalibration, estimation_error
from watchkeeper.performance import BINARY, MULTICLASS, MetricsInputError, MetricValue, compute_metrics

WINDOWS = 50


def binary_world(n: int, seed: int, power: float = 1.0, shift: float = 0.0, flip: bool = False):
    """Scores p**power for true P(y=1 | x) = p; `shift` moves the features (covariate drift),
    `flip` inverts the labels where x > 0.5 (concept drift)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(0.3 + 1.5 * x)))
    y = (rng.uniform(size=n) < p).astype(int)
    if flip:
        y = np.where(x > 0.5, 1 - y, y)
    s = p**power
    return np.c_[1 - s, s], y


def multiclass_world(n: int, seed: int, temperature: float = 1.0):
    """Three classes, y ~ Categorical(softmax(logits)); the model reports softmax(temperature * logits)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    logits = 1.5 * np.c_[z[:, 0], z[:, 1], -z.sum(axis=1)] + np.array([0.3, 0.0, -0.2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)[:, :2]).sum(axis=1)
    s = np.exp(temperature * logits)
    return s / s.sum(axis=1, keepdims=True), y


def realised(task: str, proba: np.ndarray, y: np.ndarray, classes: list) -> dict[str, MetricValue]:
    return {m.name: m for m in compute_metrics(task, y, proba.argmax(axis=1), proba, classes, n_boot=0)}


def as_dict(metrics: list[MetricValue]) -> dict[str, MetricValue]:
    return {m.name: m for m in metrics}


def values(metrics: list[MetricValue]) -> dict[str, float | None]:
    return {m.name: m.value for m in metrics}


def coverage(cbpe: CBPE, task: str, world, classes: list) -> tuple[dict[str, int], dict[str, float]]:
    """Over WINDOWS windows of 1000 rows: how often each realised metric falls in the estimate's
    95% interval, and the ratio of the standard deviation that interval implies to the observed
    spread of realised - estimate (near 1 when the interval is honest, not merely wide)."""
    rows = []  # (name, hit, gap, half width)
    for seed in range(WINDOWS):
        proba, y = world(1000, 100 + seed)
        estimate, actual = as_dict(cbpe.estimate(proba)), realised(task, proba, y, classes)
        rows += [(name, e.lower <= actual[name].value <= e.upper, actual[name].value - e.value, (e.upper - e.lower) / 2)
                 for name, e in estimate.items()]
    hits = {name: sum(hit for n, hit, _, _ in rows if n == name) for name in ESTIMATED_METRICS}
    ratio = {name: np.mean([w for n, _, _, w in rows if n == name]) / 1.96
             / np.std([g for n, _, g, _ in rows if n == name]) for name in ESTIMATED_METRICS}
    return hits, ratio


def test_isotonic_calibration_predicts_as_sklearn_with_ties_and_out_of_range():
    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(size=3000), 2)
    y = (rng.uniform(size=3000) < np.sqrt(scores)).astype(float)
    query = np.r_[rng.uniform(-0.1, 1.1, 2000), scores]
    sklearn = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y).predict(query)
    assert IsotonicCalibration.fit(scores, y).predict(query) == pytest.approx(sklearn, abs=1e-12)


def test_binary_estimate_covers_realised_without_concept_drift():
    """Calibrated scores, y ~ Bernoulli(p), and covariate drift the model handles.

    95% intervals are held to >= 90% of 50 windows: a 90% interval would meet that bar only
    about half the time by chance, whatever its quality; the width ratio guards the other side."""
    reference = binary_world(5000, seed=1)
    cbpe = CBPE(n_boot=500, confidence=0.95).fit(*reference, classes=[0, 1])
    assert cbpe.calibrators_ == [None]  # calibrated scores are left alone
    hits, width_ratio = coverage(cbpe, BINARY, lambda n, seed: binary_world(n, seed, shift=0.4), [0, 1])
    assert all(h >= 0.9 * WINDOWS for h in hits.values()), hits
    assert all(0.7 < r < 1.5 for r in width_ratio.values()), width_ratio  # honest, not merely wide


def test_multiclass_estimate_covers_realised_without_concept_drift():
    cbpe = CBPE(n_boot=500, confidence=0.95).fit(*multiclass_world(5000, seed=1), classes=[0, 1, 2])
    hits, width_ratio = coverage(cbpe, MULTICLASS, multiclass_world, [0, 1, 2])
    assert all(h >= 0.9 * WINDOWS for h in hits.values()), hits
    assert all(0.7 < r < 1.5 for r in width_ratio.values()), width_ratio


def test_concept_drift_opens_a_gap_between_estimate_and_realised():
    cbpe = CBPE().fit(*binary_world(5000, seed=1), classes=[0, 1])
    proba, y = binary_world(2000, seed=7)
    drifted_y = binary_world(2000, seed=7, flip=True)[1]  # same rows and scores, labels flipped where x > 0.5
    estimate = as_dict(cbpe.estimate(proba))
    before, after = realised(BINARY, proba, y, [0, 1]), realised(BINARY, proba, drifted_y, [0, 1])
    for name in ("accuracy", "f1", "roc_auc"):
        assert estimate[name].lower <= before[name].value <= estimate[name].upper, name
        assert after[name].value < estimate[name].lower - 0.1, name
    errors = estimation_error(cbpe.estimate(proba), list(after.values()))
    assert errors["accuracy"] > 0.1
    assert estimation_error(cbpe.estimate(proba), list(before.values()))["accuracy"] < 0.02


def test_miscalibrated_binary_scores_are_corrected():
    """Scores p**3 understate P(y=1); raw CBPE would expect the wrong confusion matrix."""
    cbpe = CBPE().fit(*binary_world(5000, seed=1, power=3), classes=[0, 1])
    assert cbpe.calibrators_[0] is not None
    raw = CBPE.from_dict({**cbpe.to_dict(), "calibrators": [None]})
    proba, y = binary_world(10_000, seed=8, power=3)
    actual, corrected, naive = realised(BINARY, proba, y, [0, 1]), as_dict(cbpe.estimate(proba)), as_dict(
        raw.estimate(proba))
    for name in ("accuracy", "precision", "recall", "f1"):
        assert corrected[name].lower <= actual[name].value <= corrected[name].upper, name
        assert abs(corrected[name].value - actual[name].value) < 0.02, name
        assert abs(naive[name].value - actual[name].value) > 0.1, name


def test_miscalibrated_multiclass_scores_are_corrected():
    """Over-confident softmax (temperature 2.5): isotonic per class, then rows renormalised."""
    cbpe = CBPE().fit(*multiclass_world(5000, seed=1, temperature=2.5), classes=[0, 1, 2])
    assert all(c is not None for c in cbpe.calibrators_)
    raw = CBPE.from_dict({**cbpe.to_dict(), "calibrators": [None] * 3})
    proba, y = multiclass_world(10_000, seed=8, temperature=2.5)
    actual = realised(MULTICLASS, proba, y, [0, 1, 2])
    corrected, naive = as_dict(cbpe.estimate(proba)), as_dict(raw.estimate(proba))
    assert abs(corrected["accuracy"].value - actual["accuracy"].value) < 0.01
    assert abs(naive["accuracy"].value - actual["accuracy"].value) > 0.05
    assert cbpe.calibrate(proba).sum(axis=1) == pytest.approx(np.ones(len(proba)))


def test_custom_threshold_predictions_are_estimated():
    labels = np.array(["no", "yes"])
    reference_proba, reference_y = binary_world(5000, seed=1)
    cbpe = CBPE().fit(reference_proba, labels[reference_y], classes=["no", "yes"])
    proba, y = binary_world(10_000, seed=9)
    low_threshold = labels[(proba[:, 1] > 0.3).astype(int)]
    estimate = as_dict(cbpe.estimate(proba, y_pred=low_threshold))
    actual = values(compute_metrics(BINARY, labels[y], low_threshold, classes=["no", "yes"], n_boot=0))
    default = as_dict(cbpe.estimate(proba))
    assert estimate["recall"].value > default["recall"].value
    for name in ("accuracy", "precision", "recall", "f1"):
        assert estimate[name].lower <= actual[name] <= estimate[name].upper, name


def test_round_trip_through_json_gives_identical_estimates():
    proba, y = multiclass_world(2000, seed=1, temperature=2.0)
    cbpe = CBPE(n_boot=50, seed=3).fit(proba, np.array(["a", "b", "c"])[y], classes=["a", "b", "c"])
    restored = CBPE.from_dict(json.loads(json.dumps(cbpe.to_dict())))
    proba, _ = multiclass_world(500, seed=2, temperature=2.0)
    assert restored.estimate(proba) == cbpe.estimate(proba)
    assert restored.classes_ == ["a", "b", "c"] and restored.n_boot == 50


def test_numpy_classes_are_stored_as_json_types():
    proba, y = binary_world(500, seed=1)
    saved = CBPE().fit(proba, y, classes=np.array([0, 1])).to_dict()
    assert json.loads(json.dumps(saved))["classes"] == [0, 1]


def test_estimation_error_skips_metrics_without_a_value():
    estimated = [MetricValue("accuracy", 0.8, 0.7, 0.9), MetricValue("roc_auc", 0.9, 0.85, 0.95),
                 MetricValue("f1", None, None, None)]
    actual = [MetricValue("accuracy", 0.6, 0.5, 0.7), MetricValue("roc_auc", None, None, None),
              MetricValue("f1", 0.5, 0.4, 0.6)]
    assert estimation_error(estimated, actual) == {"accuracy": pytest.approx(0.2)}


def test_empty_window_estimates_none():
    cbpe = CBPE().fit(*binary_world(500, seed=1), classes=[0, 1])
    assert all(m.value is None for m in cbpe.estimate(np.empty((0, 2))))


@pytest.mark.parametrize("call, match", [
    (lambda: CBPE().estimate(np.ones((3, 2)) / 2), "not fitted"),
    (lambda: CBPE().fit(np.ones((100, 2)) / 2, np.zeros(100), classes=[0, 1]), "lacks classes"),
    (lambda: CBPE().fit(np.ones((20, 2)) / 2, np.arange(20) % 2, classes=[0, 1]), "reference rows"),
    (lambda: CBPE().fit(*binary_world(100, 1), classes=[0, 1, 2]), "shape"),
    (lambda: CBPE().fit(*binary_world(100, 1), classes=[0, 1]).estimate(np.ones((3, 2)) / 2, y_pred=[0, 1]),
     "rows"),
    (lambda: CBPE.from_dict({"n_boot": 10}), "not a saved CBPE"),
])
def test_bad_input_raises_one_line_error(call, match):
    with pytest.raises(MetricsInputError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
