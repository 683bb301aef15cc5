"""Metrics must match scikit-learn, and their bootstrap intervals must be honest."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from watchkeeper.performance import (
    BINARY,
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    MISSING_SEGMENT,
    MULTICLASS,
    REGRESSION,
    MetricsInputError,
    MetricValue,
    batch_auc,
    compute_metrics,
    confusion_matrix,
    is_degraded,
    midranks,
    rank_sum_auc,
    segment_metrics,
    weighted_metrics,
)

EXACT = dict(rel=1e-12, abs=1e-12)


def as_dict(metrics: list[MetricValue]) -> dict[str, MetricValue]:
    return {m.name: m for m in metrics}


def values(metrics: list[MetricValue]) -> dict[str, float | None]:
    return {m.name: m.value for m in metrics}


def binary_data(n: int, seed: int = 0, skill: float = 1.5):
    """Scores rounded to 2 decimals so that tied scores occur."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.round(1 / (1 + np.exp(-(skill * (2 * y - 1) + rng.normal(size=n)))), 2)
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


def regression_data(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return y, y + rng.normal(0, 1, n)


def sklearn_binary(y, pred, p1, sample_weight=None) -> dict[str, float]:
    kw = dict(sample_weight=sample_weight)
    labels = dict(labels=[0, 1], zero_division=0, **kw)
    return {
        "accuracy": skm.accuracy_score(y, pred, **kw),
        "precision": skm.precision_score(y, pred, zero_division=0, **kw),
        "recall": skm.recall_score(y, pred, zero_division=0, **kw),
        "f1": skm.f1_score(y, pred, zero_division=0, **kw),
        "f1_macro": skm.f1_score(y, pred, average="macro", **labels),
        "f1_weighted": skm.f1_score(y, pred, average="weighted", **labels),
        "roc_auc": skm.roc_auc_score(y, p1, **kw),
        "pr_auc": skm.average_precision_score(y, p1, **kw),
        "log_loss": skm.log_loss(y, p1, labels=[0, 1], **kw),
        "brier": skm.brier_score_loss(y, p1, **kw),
    }


def sklearn_multiclass(y, pred, proba, sample_weight=None) -> dict[str, float]:
    kw = dict(sample_weight=sample_weight)
    labels = dict(labels=[0, 1, 2], zero_division=0, **kw)
    return {
        "accuracy": skm.accuracy_score(y, pred, **kw),
        "precision": skm.precision_score(y, pred, average="macro", **labels),
        "recall": skm.recall_score(y, pred, average="macro", **labels),
        "f1": skm.f1_score(y, pred, average="macro", **labels),
        "f1_weighted": skm.f1_score(y, pred, average="weighted", **labels),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", labels=[0, 1, 2], **kw),
        "log_loss": skm.log_loss(y, proba, labels=[0, 1, 2], **kw),
        "brier": skm.brier_score_loss(y, proba, labels=[0, 1, 2], **kw),  # summed over classes for k >= 3
    }


def sklearn_regression(y, pred, sample_weight=None) -> dict[str, float]:
    kw = dict(sample_weight=sample_weight)
    return {"rmse": skm.root_mean_squared_error(y, pred, **kw), "mae": skm.mean_absolute_error(y, pred, **kw),
            "mape": skm.mean_absolute_percentage_error(y, pred, **kw), "r2": skm.r2_score(y, pred, **kw)}


def test_binary_points_equal_sklearn_with_ties():
    y, pred, proba = binary_data(300)
    got = values(compute_metrics(BINARY, y, pred, proba, classes=["stay", "churn"]))
    expected = sklearn_binary(y == "churn", pred == "churn", proba[:, 1])
    assert list(got) == list(METRIC_NAMES[BINARY])
    assert got == pytest.approx(expected, **EXACT)


def test_multiclass_points_equal_sklearn_with_ties():
    y, pred, proba = multiclass_data(400)
    got = values(compute_metrics(MULTICLASS, y, pred, proba, classes=[0, 1, 2]))
    assert list(got) == list(METRIC_NAMES[MULTICLASS])
    assert got == pytest.approx(sklearn_multiclass(y, pred, proba), **EXACT)


def test_regression_points_equal_sklearn():
    y, pred = regression_data(500)
    got = values(compute_metrics(REGRESSION, y, pred))
    assert list(got) == list(METRIC_NAMES[REGRESSION])
    assert got == pytest.approx(sklearn_regression(y, pred), **EXACT)


def test_resamples_equal_sklearn_with_counts_as_sample_weight():
    """Each bootstrap row is a multiset of rows, i.e. sklearn with integer sample weights."""
    counts = np.random.default_rng(0).multinomial(200, np.full(200, 1 / 200), size=3).astype(float)
    y, pred, proba = binary_data(200, seed=3)
    t, p = (y == "churn").astype(int), (pred == "churn").astype(int)
    binary = weighted_metrics(BINARY, t, p, proba, [0, 1], counts)
    y3, pred3, proba3 = multiclass_data(200, seed=3)
    multi = weighted_metrics(MULTICLASS, y3, pred3, proba3, [0, 1, 2], counts)
    yr, predr = regression_data(200)
    regression = weighted_metrics(REGRESSION, yr, predr, None, None, counts)
    for b, w in enumerate(counts):
        assert {k: binary[k][b] for k in METRIC_NAMES[BINARY]} == pytest.approx(
            sklearn_binary(t, p, proba[:, 1], w), **EXACT)
        assert {k: multi[k][b] for k in METRIC_NAMES[MULTICLASS]} == pytest.approx(
            sklearn_multiclass(y3, pred3, proba3, w), **EXACT)
        assert {k: regression[k][b] for k in METRIC_NAMES[REGRESSION]} == pytest.approx(
            sklearn_regression(yr, predr, w), rel=1e-9)


def test_resamples_equal_sklearn_with_distinct_scores():
    """Continuous scores (no ties, the usual case) take the ranked metrics' shortcut: still sklearn's."""
    rng = np.random.default_rng(5)
    counts = rng.multinomial(300, np.full(300, 1 / 300), size=4).astype(float)
    y = rng.integers(0, 2, 300)
    p1 = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(size=300))))
    p = (p1 > 0.5).astype(int)
    binary = weighted_metrics(BINARY, y, p, np.c_[1 - p1, p1], [0, 1], np.vstack([np.ones(300), counts]))
    y3, _, _ = multiclass_data(300, seed=5)
    logits = 1.2 * np.eye(3)[y3] + rng.normal(size=(300, 3))
    proba3 = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    multi = weighted_metrics(MULTICLASS, y3, proba3.argmax(axis=1), proba3, [0, 1, 2], counts)
    for b, w in enumerate(counts):
        assert {k: binary[k][b + 1] for k in METRIC_NAMES[BINARY]} == pytest.approx(
            sklearn_binary(y, p, p1, w), **EXACT)
        assert {k: multi[k][b] for k in METRIC_NAMES[MULTICLASS]} == pytest.approx(
            sklearn_multiclass(y3, proba3.argmax(axis=1), proba3, w), **EXACT)
    assert {k: binary[k][0] for k in METRIC_NAMES[BINARY]} == pytest.approx(sklearn_binary(y, p, p1), **EXACT)


def test_binary_default_positive_is_larger_label():
    y, pred = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 0])
    m = as_dict(compute_metrics(BINARY, y, pred))
    assert m["recall"].value == pytest.approx(1 / 3)
    assert all(m[name].value is None for name in ("roc_auc", "pr_auc", "log_loss", "brier"))


def test_auc_is_none_when_a_class_is_absent():
    y, pred, proba = multiclass_data(50)
    keep = y != 2
    m = as_dict(compute_metrics(MULTICLASS, y[keep], pred[keep], proba[keep], classes=[0, 1, 2]))
    assert m["roc_auc"].value is None and m["accuracy"].value is not None
    assert m["log_loss"].value == pytest.approx(skm.log_loss(y[keep], proba[keep], labels=[0, 1, 2]))
    negatives = as_dict(compute_metrics(BINARY, [0, 0, 0], [1, 0, 1], np.array([[.2, .8], [.6, .4], [.1, .9]]), [0, 1]))
    assert negatives["roc_auc"].value is None and negatives["pr_auc"].value is None  # no positive to recall


def test_r2_is_none_for_a_constant_target():
    """sklearn returns 0.0 or 1.0 by convention; the fraction of zero variance explained is undefined."""
    m = as_dict(compute_metrics(REGRESSION, [2.0] * 40, np.linspace(1, 3, 40)))
    assert m["r2"].value is None and m["mae"].value == pytest.approx(0.5128205128205128)


def test_confusion_matrix_equals_sklearn():
    y, pred, _ = binary_data(300)
    classes = ["stay", "churn", "unseen"]
    assert confusion_matrix(y, pred, classes) == skm.confusion_matrix(y, pred, labels=classes).tolist()
    y3, pred3, _ = multiclass_data(300)
    assert confusion_matrix(y3, pred3, [2, 0, 1]) == skm.confusion_matrix(y3, pred3, labels=[2, 0, 1]).tolist()


def test_every_interval_contains_its_point_and_narrows_with_n():
    for task, make in [(BINARY, binary_data), (MULTICLASS, multiclass_data), (REGRESSION, regression_data)]:
        widths = []
        for n in (100, 1000, 10000):
            metrics = compute_metrics(task, *make(n))
            for m in metrics:
                assert m.lower <= m.value <= m.upper, (task, n, m)
            widths.append({m.name: m.upper - m.lower for m in metrics})
        for name in METRIC_NAMES[task]:
            assert widths[0][name] > widths[1][name] > widths[2][name], (task, name)


def test_accuracy_interval_matches_normal_approximation():
    y, pred, _ = binary_data(400, seed=5, skill=1.0)
    acc = compute_metrics(BINARY, y, pred, n_boot=2000, confidence=0.9)[0]
    p = acc.value
    normal_width = 2 * 1.6449 * np.sqrt(p * (1 - p) / 400)
    assert acc.upper - acc.lower == pytest.approx(normal_width, rel=0.3)


def test_seed_makes_intervals_reproducible():
    y, pred, proba = binary_data(200)
    assert compute_metrics(BINARY, y, pred, proba, seed=7) == compute_metrics(BINARY, y, pred, proba, seed=7)
    assert compute_metrics(BINARY, y, pred, proba, seed=7) != compute_metrics(BINARY, y, pred, proba, seed=8)


@pytest.mark.parametrize("task", [BINARY, MULTICLASS, REGRESSION])
def test_empty_window_gives_none(task):
    metrics = compute_metrics(task, [], [], proba=np.empty((0, 2)) if task == BINARY else None)
    assert [m.name for m in metrics] == list(METRIC_NAMES[task])
    assert all(m.to_dict() == {"name": m.name, "value": None, "lower": None, "upper": None} for m in metrics)


@pytest.mark.parametrize("args, match", [
    ((BINARY, [0, 1], [0]), "rows"),
    (("ranking", [0], [0]), "unknown task"),
    ((REGRESSION, [1.0, np.nan], [1.0, 2.0]), "NaN"),
    ((REGRESSION, [1.0, 2.0], [1.0, 2.0], np.ones((2, 2))), "classification"),
    ((MULTICLASS, ["a", "b", "z"], ["a", "b", "c"], None, ["a", "b", "c"]), "not in classes"),
    ((BINARY, [0, 1, 2], [0, 1, 2]), "2 classes"),
    ((MULTICLASS, [0, 1, 2], [0, 1, 2], np.ones((3, 2))), "shape"),
    ((BINARY, [0, 1], [0, 1], np.array([[0.5, 0.5], [-0.1, 1.1]])), r"\[0, 1\]"),
    ((BINARY, [0, 1], [0, 1], np.array([[0.5, 0.5], [np.nan, 1.0]])), "NaN"),
])
def test_bad_input_raises_one_line_error(args, match):
    with pytest.raises(MetricsInputError, match=match) as err:
        compute_metrics(*args)
    assert "\n" not in str(err.value)


def test_segments_equal_sklearn_per_segment():
    y, pred, proba = binary_data(900, seed=2)
    region = np.random.default_rng(2).choice(["north", "south", "east"], size=900, p=[0.5, 0.47, 0.03])
    region = np.where(np.arange(900) % 100 == 0, None, region)  # a few rows without a region
    frame = pd.DataFrame({"region": region, "label": y, "prediction": pred,
                          "proba_stay": proba[:, 0], "proba_churn": proba[:, 1]})
    segments = segment_metrics(BINARY, frame, "region", proba_columns=["proba_stay", "proba_churn"],
                               classes=["stay", "churn"], min_rows=30)
    assert set(segments) == {"north", "south", "east", MISSING_SEGMENT}
    for key, metrics in segments.items():
        rows = frame["region"].isna() if key == MISSING_SEGMENT else frame["region"] == key
        part = frame[rows]
        expected = sklearn_binary(part["label"] == "churn", part["prediction"] == "churn", part["proba_churn"])
        assert values(metrics) == pytest.approx(expected, **EXACT), key
        small = rows.sum() < 30
        assert all((m.lower is None) == small for m in metrics), (key, rows.sum())


def test_segments_share_the_positive_class_of_the_whole_frame():
    """A segment holding only 'yes' rows must not make 'yes' its negative class."""
    frame = pd.DataFrame({"shop": ["a"] * 4 + ["b"] * 4, "label": ["no", "yes"] * 2 + ["yes"] * 4,
                          "prediction": ["no", "yes", "yes", "yes", "yes", "no", "yes", "yes"]})
    segments = segment_metrics(BINARY, frame, "shop", min_rows=1, n_boot=20)
    assert as_dict(segments["b"])["recall"].value == pytest.approx(0.75)
    assert as_dict(segments["a"])["precision"].value == pytest.approx(2 / 3)


def test_segments_reject_missing_columns():
    with pytest.raises(MetricsInputError, match="lacks columns"):
        segment_metrics(BINARY, pd.DataFrame({"label": [0]}), "region")


def test_every_metric_has_a_direction():
    assert {name for names in METRIC_NAMES.values() for name in names} == set(HIGHER_IS_BETTER)


def test_is_degraded_for_clearly_worse_window():
    ref = binary_metrics(5000)
    bad = binary_metrics(500, seed=1, skill=0.3)
    assert is_degraded(bad["accuracy"], ref["accuracy"], tolerance=0.05)
    assert is_degraded(bad["roc_auc"], ref["roc_auc"], tolerance=0.05)
    assert is_degraded(bad["log_loss"], ref["log_loss"], tolerance=0.2)


def test_is_not_degraded_for_small_same_distribution_window():
    ref = binary_metrics(5000)
    for seed in range(1, 11):
        small = binary_metrics(25, seed=seed)
        assert not is_degraded(small["accuracy"], ref["accuracy"], tolerance=0.02)
        assert not is_degraded(small["brier"], ref["brier"], tolerance=0.2)


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


@pytest.mark.parametrize("decimals", [None, 2])   # continuous scores, and scores with many ties
def test_rank_sum_auc_equals_sklearn_per_row(decimals):
    rng = np.random.default_rng(4)
    scores = rng.random(1500) if decimals is None else np.round(rng.random(1500), decimals)
    labels = rng.random((30, 1500)) < scores
    labels[0] = False   # a row without positives: undefined, as sklearn refuses it
    aucs = rank_sum_auc(labels.astype(float) @ midranks(scores), labels.sum(axis=1), len(scores))
    assert np.isnan(aucs[0])
    assert aucs[1:] == pytest.approx([skm.roc_auc_score(row, scores) for row in labels[1:]], abs=1e-12)
    assert aucs[1:] == pytest.approx(batch_auc(scores, labels[1:].astype(float)), abs=1e-12)
