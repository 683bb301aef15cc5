"""Metrics must match scikit-learn exactly, and their bootstrap intervals must be honest."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    roc_auc_score,
    root_mean_squared_error,
)

from watchkeeper.performance import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    MetricsInputError,
    MetricValue,
    _confusion,
    _confusion_metrics,
    _weighted_auc,
    compute_metrics,
    is_degraded,
)


def as_dict(metrics: list[MetricValue]) -> dict[str, MetricValue]:
    return {m.name: m for m in metrics}


def binary_data(n: int, seed: int = 0, skill: float = 1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = 1 / (1 + np.exp(-(skill * (2 * y - 1) + rng.normal(size=n))))
    return np.where(y == 1, "churn", "stay"), np.where(p1 > 0.5, "churn", "stay"), np.c_[1 - p1, p1]


def binary_metrics(n: int, seed: int = 0, skill: float = 1.5) -> dict[str, MetricValue]:
    return as_dict(compute_metrics(BINARY, *binary_data(n, seed, skill), classes=["stay", "churn"]))


def multiclass_data(n: int, seed: int = 0):
    """Wine-like: three cultivars, moderately separable, scores rounded so ties occur."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = 1.2 * np.eye(3)[y] + rng.normal(size=(n, 3))
    proba = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)
    proba /= proba.sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba


def test_binary_points_equal_sklearn():
    y, pred, proba = binary_data(300)
    m = as_dict(compute_metrics(BINARY, y, pred, proba, classes=["stay", "churn"]))
    p, r, f, _ = precision_recall_fscore_support(y, pred, pos_label="churn", average="binary")
    assert m["accuracy"].value == accuracy_score(y, pred)
    assert (m["precision"].value, m["recall"].value, m["f1"].value) == (p, r, f)
    assert m["roc_auc"].value == roc_auc_score(y == "churn", proba[:, 1])


def test_binary_default_positive_is_larger_label():
    y, pred = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 0])
    m = as_dict(compute_metrics(BINARY, y, pred))
    assert m["recall"].value == pytest.approx(1 / 3)
    assert m["roc_auc"].value is None


def test_multiclass_points_equal_sklearn():
    y, pred, proba = multiclass_data(400)
    m = as_dict(compute_metrics(MULTICLASS, y, pred, proba, classes=[0, 1, 2]))
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert m["accuracy"].value == accuracy_score(y, pred)
    assert (m["precision"].value, m["recall"].value, m["f1"].value) == (p, r, f)
    assert m["roc_auc"].value == roc_auc_score(y, proba, multi_class="ovr", labels=[0, 1, 2])


def test_multiclass_auc_none_when_a_class_is_absent():
    y, pred, proba = multiclass_data(50)
    keep = y != 2
    m = as_dict(compute_metrics(MULTICLASS, y[keep], pred[keep], proba[keep], classes=[0, 1, 2]))
    assert m["roc_auc"].value is None and m["accuracy"].value is not None


def test_regression_points_equal_sklearn():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 500)
    pred = y + rng.normal(0, 1, 500)
    m = as_dict(compute_metrics(REGRESSION, y, pred))
    assert m["mae"].value == mean_absolute_error(y, pred)
    assert m["rmse"].value == root_mean_squared_error(y, pred)


def test_resample_statistics_equal_sklearn_with_sample_weight():
    """Each bootstrap row is a multiset of rows, i.e. sklearn with integer sample weights."""
    y, pred, proba = multiclass_data(200, seed=3)
    counts = np.random.default_rng(0).multinomial(200, np.full(200, 1 / 200), size=3)
    boots = _confusion_metrics(_confusion(y, pred, 3, counts), binary=False)
    auc = _weighted_auc(y == 1, proba[:, 1], counts)
    for b, w in enumerate(counts):
        p, r, f, _ = precision_recall_fscore_support(
            y, pred, labels=[0, 1, 2], average="macro", sample_weight=w, zero_division=0)
        assert boots["accuracy"][b] == pytest.approx(accuracy_score(y, pred, sample_weight=w))
        assert (boots["precision"][b], boots["recall"][b], boots["f1"][b]) == pytest.approx((p, r, f))
        assert auc[b] == pytest.approx(roc_auc_score(y == 1, proba[:, 1], sample_weight=w))


def test_weighted_auc_with_unit_weights_equals_sklearn_including_ties():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300).astype(bool)
    scores = np.round(rng.normal(size=300) + y, 1)  # coarse rounding: many ties
    auc = _weighted_auc(y, scores, np.ones((1, 300)))[0]
    assert auc == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_interval_contains_point_and_narrows_with_n():
    widths = []
    for n in (100, 1000, 10000):
        y, pred, proba = binary_data(n)
        for m in compute_metrics(BINARY, y, pred, proba, classes=["stay", "churn"]):
            assert m.lower <= m.value <= m.upper, m
        acc = compute_metrics(BINARY, y, pred, proba, classes=["stay", "churn"])[0]
        widths.append(acc.upper - acc.lower)
    assert widths[0] > widths[1] > widths[2]


def test_accuracy_interval_matches_normal_approximation():
    y, pred, _ = binary_data(400, seed=5, skill=1.0)
    acc = compute_metrics(BINARY, y, pred, n_boot=2000, confidence=0.9)[0]
    p = acc.value
    normal_width = 2 * 1.6449 * np.sqrt(p * (1 - p) / 400)
    assert acc.upper - acc.lower == pytest.approx(normal_width, rel=0.3)


def test_seed_makes_intervals_reproducible():
    y, pred, proba = binary_data(200)
    assert compute_metrics(BINARY, y, pred, proba, seed=7) == compute_metrics(BINARY, y, pred, proba, seed=7)


@pytest.mark.parametrize("task", [BINARY, MULTICLASS, REGRESSION])
def test_empty_window_gives_none(task):
    metrics = compute_metrics(task, [], [], proba=np.empty((0, 2)) if task == BINARY else None)
    assert metrics and all(m.to_dict() == {"name": m.name, "value": None, "lower": None, "upper": None}
                           for m in metrics)


@pytest.mark.parametrize("args, match", [
    ((BINARY, [0, 1], [0]), "rows"),
    (("ranking", [0], [0]), "unknown task"),
    ((REGRESSION, [1.0, np.nan], [1.0, 2.0]), "NaN"),
    ((MULTICLASS, ["a", "b", "z"], ["a", "b", "c"], None, ["a", "b", "c"]), "not in classes"),
    ((BINARY, [0, 1, 2], [0, 1, 2]), "2 classes"),
    ((MULTICLASS, [0, 1, 2], [0, 1, 2], np.ones((3, 2))), "shape"),
])
def test_bad_input_raises_one_line_error(args, match):
    with pytest.raises(MetricsInputError, match=match) as err:
        compute_metrics(*args)
    assert "\n" not in str(err.value)


def test_is_degraded_for_clearly_worse_window():
    ref = binary_metrics(5000)
    bad = binary_metrics(500, seed=1, skill=0.3)
    assert is_degraded(bad["accuracy"], ref["accuracy"], tolerance=0.05)
    assert is_degraded(bad["roc_auc"], ref["roc_auc"], tolerance=0.05)


def test_is_not_degraded_for_small_same_distribution_window():
    ref = binary_metrics(5000)
    for seed in range(1, 11):
        small = binary_metrics(25, seed=seed)
        assert not is_degraded(small["accuracy"], ref["accuracy"], tolerance=0.02)


def test_is_degraded_regression_uses_relative_tolerance():
    rng = np.random.default_rng(4)
    y = rng.normal(size=2000)
    ref = as_dict(compute_metrics(REGRESSION, y, y + rng.normal(0, 1.0, 2000)))["mae"]
    worse = as_dict(compute_metrics(REGRESSION, y[:300], y[:300] + rng.normal(0, 2.0, 300)))["mae"]
    same = as_dict(compute_metrics(REGRESSION, y[:300], y[:300] + rng.normal(0, 1.0, 300)))["mae"]
    assert is_degraded(worse, ref, tolerance=0.2)
    assert not is_degraded(same, ref, tolerance=0.2)
    assert not is_degraded(MetricValue("mae", None, None, None), ref, tolerance=0.2)


def test_large_window_runs_vectorised():
    """Speed sanity, no timing assert: 20k rows x 200 resamples with OvR AUC takes well under a second."""
    y, pred, proba = multiclass_data(20_000)
    metrics = compute_metrics(MULTICLASS, y, pred, proba)
    assert all(m.lower <= m.value <= m.upper for m in metrics)
