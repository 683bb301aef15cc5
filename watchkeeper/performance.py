"""Model performance metrics with bootstrap confidence intervals.

Monitoring windows are small and labels arrive late, so a bare point estimate would
flag sampling noise as degradation. Every metric therefore carries a percentile
bootstrap interval, and `is_degraded` only fires when the whole interval is past the
reference. Point values come from scikit-learn so they match what data scientists
see offline; the bootstrap is vectorised (no loop over resamples) so it stays cheap
for every window of every model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    roc_auc_score,
    root_mean_squared_error,
)

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
PRIMARY_METRIC = {BINARY: "accuracy", MULTICLASS: "accuracy", REGRESSION: "mae"}
HIGHER_IS_BETTER = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True,
    "rmse": False, "mae": False,
}
METRIC_NAMES = {
    BINARY: ("accuracy", "precision", "recall", "f1", "roc_auc"),
    MULTICLASS: ("accuracy", "precision", "recall", "f1", "roc_auc"),
    REGRESSION: ("rmse", "mae"),
}


class MetricsInputError(ValueError):
    """Unusable monitoring input; messages are one line so they read well in run logs."""


@dataclass
class MetricValue:
    """A metric with its percentile bootstrap interval; None means not computable for this window."""

    name: str
    value: float | None
    lower: float | None
    upper: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def compute_metrics(
    task: str, y_true, y_pred, proba: np.ndarray | None = None, classes: Sequence | None = None,
    n_boot: int = 200, confidence: float = 0.9, seed: int = 0,
) -> list[MetricValue]:
    """Metrics of `task` with `confidence` bootstrap intervals over `n_boot` seeded resamples.

    Zero labelled rows is not an error (labels of recent windows have not arrived yet):
    every metric is then None.
    """
    if task not in METRIC_NAMES:
        raise MetricsInputError(f"unknown task {task!r}; expected one of {sorted(METRIC_NAMES)}")
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    proba = None if proba is None else np.asarray(proba, dtype=float)
    _check_inputs(y_true, y_pred, proba, n_boot, confidence)
    if len(y_true) == 0:
        return [MetricValue(name, None, None, None) for name in METRIC_NAMES[task]]
    n = len(y_true)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    if task == REGRESSION:
        points, boots = _regression(y_true, y_pred, counts)
    else:
        points, boots = _classification(task, y_true, y_pred, proba, classes, counts)
    return [_interval(name, points[name], boots[name], confidence) for name in METRIC_NAMES[task]]


def is_degraded(metric: MetricValue, reference: MetricValue, tolerance: float) -> bool:
    """Whether the window is worse than the reference beyond `tolerance`, even at its best.

    Higher-is-better metrics (scores in [0, 1]) use an absolute tolerance: degraded when
    upper < reference - tolerance. Error metrics (rmse, mae) have the target's scale, so
    their tolerance is relative: degraded when lower > reference * (1 + tolerance).
    Missing values never count as degradation.
    """
    if metric.name != reference.name:
        raise MetricsInputError(f"cannot compare {metric.name!r} with reference {reference.name!r}")
    if reference.value is None:
        return False
    if HIGHER_IS_BETTER[metric.name]:
        return metric.upper is not None and metric.upper < reference.value - tolerance
    return metric.lower is not None and metric.lower > reference.value * (1 + tolerance)


def _check_inputs(y_true, y_pred, proba, n_boot: int, confidence: float) -> None:
    if len(y_true) != len(y_pred):
        raise MetricsInputError(f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}")
    if proba is not None and len(proba) != len(y_true):
        raise MetricsInputError(f"proba has {len(proba)} rows but y_true has {len(y_true)}")
    if proba is not None and not np.isfinite(proba).all():
        raise MetricsInputError("proba contains NaN or infinite values")
    if n_boot < 0 or not 0 < confidence < 1:
        raise MetricsInputError(f"need n_boot >= 0 and 0 < confidence < 1, got {n_boot}, {confidence}")


def _interval(name: str, point, boots: np.ndarray | None, confidence: float) -> MetricValue:
    """Percentile interval; resamples where the metric is undefined (NaN) are left out."""
    if point is None:
        return MetricValue(name, None, None, None)
    finite = boots[np.isfinite(boots)]
    if finite.size == 0:
        return MetricValue(name, float(point), None, None)
    tail = 50 * (1 - confidence)
    lower, upper = np.percentile(finite, [tail, 100 - tail])
    return MetricValue(name, float(point), float(lower), float(upper))


def _regression(y_true, y_pred, counts: np.ndarray) -> tuple[dict, dict]:
    try:
        t, p = y_true.astype(float), y_pred.astype(float)
    except (TypeError, ValueError):
        raise MetricsInputError("regression y_true and y_pred must be numeric") from None
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise MetricsInputError("regression y_true/y_pred contain NaN or inf; drop unlabelled rows first")
    err = p - t
    points = {"mae": mean_absolute_error(t, p), "rmse": root_mean_squared_error(t, p)}
    boots = {"mae": counts @ np.abs(err) / len(err), "rmse": np.sqrt(counts @ err**2 / len(err))}
    return points, boots


def _classification(task, y_true, y_pred, proba, classes, counts) -> tuple[dict, dict]:
    t, p, k = _encode(task, y_true, y_pred, classes)
    average = "binary" if task == BINARY else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        t, p, labels=None if task == BINARY else list(range(k)), average=average, zero_division=0)
    points = {"accuracy": accuracy_score(t, p), "precision": precision, "recall": recall, "f1": f1}
    boots = _confusion_metrics(_confusion(t, p, k, counts), binary=task == BINARY)
    points["roc_auc"], boots["roc_auc"] = _roc_auc(task, t, k, proba, counts)
    return points, boots


def _encode(task, y_true, y_pred, classes) -> tuple[np.ndarray, np.ndarray, int]:
    """Map labels to 0..k-1 in `classes` order; binary puts the positive (last) class at 1."""
    given = classes is not None
    index = pd.Index(list(classes) if given else np.unique(np.concatenate([y_true, y_pred])))
    if not index.is_unique:
        raise MetricsInputError(f"classes contain duplicates: {list(index)}")
    if task == BINARY and (len(index) > 2 or given and len(index) != 2):
        raise MetricsInputError(f"binary task needs 2 classes, got {list(index)[:10]}")
    t, p = index.get_indexer(y_true), index.get_indexer(y_pred)
    if (t < 0).any() or (p < 0).any():
        unknown = pd.unique(np.concatenate([y_true[t < 0], y_pred[p < 0]]))[:5]
        raise MetricsInputError(f"labels {list(unknown)} not in classes {list(index)[:10]}")
    if task == BINARY:
        return (t == len(index) - 1).astype(int), (p == len(index) - 1).astype(int), 2
    return t, p, len(index)


def _confusion(t: np.ndarray, p: np.ndarray, k: int, counts: np.ndarray) -> np.ndarray:
    """(B, k, k) confusion matrices [resample, true, pred] from one weighted bincount."""
    b = counts.shape[0]
    flat = np.arange(b)[:, None] * (k * k) + (t * k + p)[None, :]
    return np.bincount(flat.ravel(), weights=counts.ravel(), minlength=b * k * k).reshape(b, k, k)


def _confusion_metrics(cm: np.ndarray, binary: bool) -> dict[str, np.ndarray]:
    """Per-resample metrics with sklearn's definitions (zero_division=0, F1 = 2tp / (2tp + fp + fn))."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true_sum, pred_sum = cm.sum(axis=2), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = {
            "precision": np.nan_to_num(tp / pred_sum),
            "recall": np.nan_to_num(tp / true_sum),
            "f1": np.nan_to_num(2 * tp / (true_sum + pred_sum)),
        }
    out = {name: v[:, 1] if binary else v.mean(axis=1) for name, v in per_class.items()}
    out["accuracy"] = tp.sum(axis=1) / cm.sum(axis=(1, 2))
    return out


def _roc_auc(task, t, k, proba, counts) -> tuple[float | None, np.ndarray | None]:
    """Binary AUC of proba[:, 1], or one-vs-rest macro AUC; None unless every class is present."""
    if proba is None:
        return None, None
    if proba.ndim != 2 or proba.shape[1] != k:
        raise MetricsInputError(f"proba must have shape (n, {k}), columns in classes order; got {proba.shape}")
    pairs = [(t == c, proba[:, c]) for c in ([1] if task == BINARY else range(k))]
    if any(y.all() or not y.any() for y, _ in pairs):
        return None, None
    point = float(np.mean([roc_auc_score(y, s) for y, s in pairs]))
    return point, np.mean([_weighted_auc(y, s, counts) for y, s in pairs], axis=0)


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC for each weight row: weighted share of (negative, positive) pairs
    ranked correctly, ties counting one half. Sorts once; per-resample work is cumsums.
    NaN where a resample lacks one of the classes."""
    order = np.argsort(scores, kind="stable")
    s, y, w = scores[order], y[order].astype(bool), weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # tie groups of equal scores
    pos, neg = np.add.reduceat(w * y, starts, axis=1), np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pairs / (pos.sum(axis=1) * neg.sum(axis=1))
