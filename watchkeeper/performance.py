"""Model performance metrics with bootstrap confidence intervals, per window and per segment.

Monitoring windows are small and labels arrive late, so a bare point estimate would
flag sampling noise as degradation. Every metric therefore carries a percentile
bootstrap interval, and `is_degraded` only fires when the whole interval is past the
reference.

A bootstrap resample is a row of multiplicities (how often each row was drawn), so each
resample's statistic is the scikit-learn metric with those counts as `sample_weight`.
The `batch_*` helpers compute it for a whole (resamples, rows) weight matrix with a few
numpy calls (no loop over resamples), and the point value is the same statistic with
unit weights, prepended as row 0: one code path, no per-metric sklearn validation
overhead, equal to scikit-learn to 1e-12 (tests/test_performance.py checks every metric).
`watchkeeper.estimation` reuses the helpers with simulated labels.

Brier score follows `sklearn.metrics.brier_score_loss`: binary is mean (p_positive - y)^2,
in [0, 1]; multiclass is the mean over rows of the squared error summed over classes,
sum_c (p_c - [y = c])^2, in [0, 2] (Brier's original definition, sklearn >= 1.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
PRIMARY_METRIC = {BINARY: "accuracy", MULTICLASS: "accuracy", REGRESSION: "mae"}
HIGHER_IS_BETTER = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "f1_macro": True, "f1_weighted": True,
    "roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False,
    "rmse": False, "mae": False, "mape": False, "r2": True,
}
PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")   # need class probabilities, not labels
METRIC_NAMES = {
    BINARY: ("accuracy", "precision", "recall", "f1", "f1_macro", "f1_weighted",
             "roc_auc", "pr_auc", "log_loss", "brier"),
    MULTICLASS: ("accuracy", "precision", "recall", "f1", "f1_weighted", "roc_auc", "log_loss", "brier"),
    REGRESSION: ("rmse", "mae", "mape", "r2"),
}
MISSING_SEGMENT = "(missing)"
_EPS = np.finfo(np.float64).eps  # sklearn's clip for log loss and floor for |y| in MAPE


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
        return {"name": self.name, "value": self.value, "lower": self.lower, "upper": self.upper}


def compute_metrics(
    task: str, y_true, y_pred, proba: np.ndarray | None = None, classes: Sequence | None = None,
    n_boot: int = 200, confidence: float = 0.9, seed: int = 0,
) -> list[MetricValue]:
    """Metrics of `task` (METRIC_NAMES order) with `confidence` bootstrap intervals over `n_boot` resamples.

    `proba` has one column per class in `classes` order (binary: the positive class is the
    last one). Zero labelled rows is not an error (labels of recent windows have not
    arrived yet): every metric is then None. `n_boot=0` gives point values only.
    """
    if task not in METRIC_NAMES:
        raise MetricsInputError(f"unknown task {task!r}; expected one of {sorted(METRIC_NAMES)}")
    if n_boot < 0 or not 0 < confidence < 1:
        raise MetricsInputError(f"need n_boot >= 0 and 0 < confidence < 1, got {n_boot}, {confidence}")
    y_true, y_pred = _same_length(y_true, y_pred)
    if len(y_true) == 0:
        return [MetricValue(name, None, None, None) for name in METRIC_NAMES[task]]
    n = len(y_true)
    weights = np.vstack([np.ones(n), resample_counts(n, n_boot, seed)])   # row 0, unit weights: the point value
    stats = weighted_metrics(task, y_true, y_pred, proba, classes, weights)
    return [percentile_interval(name, stats[name][0], stats[name][1:], confidence) if name in stats
            else MetricValue(name, None, None, None) for name in METRIC_NAMES[task]]


def resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) multiplicities of n rows drawn with replacement, one resample a row. Drawn as
    indices and counted with one bincount: the same distribution as a multinomial draw, about 4x
    cheaper (a fleet pays it once per model-window)."""
    drawn = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    drawn += n * np.arange(n_boot)[:, None]   # resample b counts into bins b n .. b n + n - 1
    return np.bincount(drawn.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def weighted_metrics(task: str, y_true, y_pred, proba: np.ndarray | None, classes: Sequence | None,
                     weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of `task` once per row of `weights` (B, n): sklearn's metric with that row as
    sample_weight, NaN where undefined. Row sums must equal n (unit weights, bootstrap counts).
    Probability metrics are left out when `proba` is None."""
    y_true, y_pred = _same_length(y_true, y_pred)
    if task == REGRESSION:
        if proba is not None:
            raise MetricsInputError("proba is only meaningful for classification tasks")
        return _regression(y_true, y_pred, weights)
    return _classification(task, y_true, y_pred, proba, classes, weights)


def confusion_matrix(y_true, y_pred, classes: Sequence) -> list[list[int]]:
    """Counts [true class][predicted class] in `classes` order, as sklearn's `confusion_matrix(labels=)`."""
    y_true, y_pred = _same_length(y_true, y_pred)
    t, p, k = _encode(MULTICLASS, y_true, y_pred, classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).tolist()


def segment_metrics(
    task: str, frame: pd.DataFrame, segment: str, label: str = "label", prediction: str = "prediction",
    proba_columns: Sequence[str] | None = None, classes: Sequence | None = None, min_rows: int = 30,
    n_boot: int = 200, **kw,
) -> dict[str, list[MetricValue]]:
    """`compute_metrics` for each value of the `segment` column, keyed by the value as text.

    Segments share one class order (taken from the whole frame when `classes` is None) so
    the positive class cannot differ between segments. Segments with fewer than `min_rows`
    rows get point values with None intervals: a bootstrap of a handful of rows is not an
    interval worth showing, and `is_degraded` never fires without one. Missing segment
    values form their own segment, MISSING_SEGMENT. `kw` (confidence, seed) goes to compute_metrics.
    """
    columns = [segment, label, prediction, *(proba_columns or [])]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MetricsInputError(f"frame lacks columns {missing}")
    if task != REGRESSION and classes is None:
        classes = np.unique(np.concatenate([frame[label].to_numpy(), frame[prediction].to_numpy()])).tolist()
    out: dict[str, list[MetricValue]] = {}
    for value, rows in frame.groupby(segment, dropna=False, sort=True, observed=True):
        key = MISSING_SEGMENT if pd.isna(value) else str(value)
        if key in out:
            raise MetricsInputError(f"segment values of {segment!r} collide as text: {key!r}")
        proba = rows[list(proba_columns)].to_numpy(dtype=float) if proba_columns else None
        out[key] = compute_metrics(task, rows[label], rows[prediction], proba, classes,
                                   n_boot=n_boot if len(rows) >= min_rows else 0, **kw)
    return out


def is_degraded(metric: MetricValue, reference: MetricValue, tolerance: float) -> bool:
    """Whether the window is worse than the reference beyond `tolerance`, even at its best.

    Higher-is-better metrics (scores in [0, 1], and r2) use an absolute tolerance: degraded
    when upper < reference - tolerance. Error metrics (rmse, mae, mape, log_loss, brier)
    have their own scales, so their tolerance is relative: degraded when
    lower > reference * (1 + tolerance). Missing values never count as degradation.
    """
    if metric.name != reference.name:
        raise MetricsInputError(f"cannot compare {metric.name!r} with reference {reference.name!r}")
    if reference.value is None:
        return False
    if HIGHER_IS_BETTER[metric.name]:
        return metric.upper is not None and metric.upper < reference.value - tolerance
    return metric.lower is not None and metric.lower > reference.value * (1 + tolerance)


def encode_labels(values: np.ndarray, classes: Sequence) -> np.ndarray:
    """Positions of `values` in `classes`; unknown labels are an error, never dropped."""
    index = pd.Index(list(classes))
    if not index.is_unique:
        raise MetricsInputError(f"classes contain duplicates: {list(index)}")
    codes = index.get_indexer(values)
    if (codes < 0).any():
        unknown = pd.unique(np.asarray(values)[codes < 0])[:5]
        raise MetricsInputError(f"labels {list(unknown)} not in classes {list(index)[:10]}")
    return codes


def validate_proba(proba, n_rows: int, k: int) -> np.ndarray:
    """Probabilities as a finite (n_rows, k) float array in [0, 1], columns in classes order."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape != (n_rows, k):
        raise MetricsInputError(f"proba must have shape ({n_rows}, {k}), columns in classes order; got {proba.shape}")
    if not np.isfinite(proba).all():
        raise MetricsInputError("proba contains NaN or infinite values")
    if proba.size and (proba.min() < 0 or proba.max() > 1):
        raise MetricsInputError(f"proba must lie in [0, 1], got [{proba.min():.3g}, {proba.max():.3g}]")
    return proba


def _same_length(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(y_true) != len(y_pred):
        raise MetricsInputError(f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}")
    return y_true, y_pred


def percentile_interval(name: str, point: float | None, boots: np.ndarray, confidence: float) -> MetricValue:
    """Percentile interval; resamples where the metric is undefined (NaN) are left out,
    and an undefined point value makes the whole metric None."""
    if point is None or not np.isfinite(point):
        return MetricValue(name, None, None, None)
    finite = boots[np.isfinite(boots)]
    if finite.size == 0:
        return MetricValue(name, float(point), None, None)
    tail = 50 * (1 - confidence)
    lower, upper = np.percentile(finite, [tail, 100 - tail])
    return MetricValue(name, float(point), float(lower), float(upper))


def _regression(y_true, y_pred, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row errors averaged with each weight row; R^2 is undefined (NaN) where y_true is constant."""
    try:
        t, p = y_true.astype(float), y_pred.astype(float)
    except (TypeError, ValueError):
        raise MetricsInputError("regression y_true and y_pred must be numeric") from None
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise MetricsInputError("regression y_true/y_pred contain NaN or inf; drop unlabelled rows first")
    n, err, centred = len(t), p - t, t - t.mean()
    sse, spread = weights @ err**2, weights @ centred**2
    sst = spread - (weights @ centred) ** 2 / n  # weighted sum of squares about the weighted mean
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 1e-12 * spread, 1 - sse / sst, np.nan)
    return {"mae": weights @ np.abs(err) / n, "rmse": np.sqrt(sse / n), "r2": r2,
            "mape": weights @ (np.abs(err) / np.maximum(np.abs(t), _EPS)) / n}


def _classification(task, y_true, y_pred, proba, classes, weights) -> dict[str, np.ndarray]:
    t, p, k = _encode(task, y_true, y_pred, classes)
    stats = confusion_scores(batch_confusion(t, p, k, weights), binary=task == BINARY)
    if proba is not None:
        stats |= _probability_metrics(t, k, validate_proba(proba, len(t), k), weights, binary=task == BINARY)
    return stats


def _encode(task, y_true, y_pred, classes) -> tuple[np.ndarray, np.ndarray, int]:
    """Map labels to 0..k-1 in `classes` order; binary puts the positive (last) class at 1."""
    given = classes is not None
    classes = list(classes) if given else np.unique(np.concatenate([y_true, y_pred])).tolist()
    if task == BINARY and (len(classes) > 2 or given and len(classes) != 2):
        raise MetricsInputError(f"binary task needs 2 classes, got {classes[:10]}")
    t, p = encode_labels(y_true, classes), encode_labels(y_pred, classes)
    if task == BINARY:
        return (t == len(classes) - 1).astype(int), (p == len(classes) - 1).astype(int), 2
    return t, p, len(classes)


def _probability_metrics(t, k, proba, weights, binary) -> dict[str, np.ndarray]:
    """Log loss, Brier score, ROC AUC (binary, or one-vs-rest macro) and binary PR AUC;
    the AUCs are NaN where a class is missing."""
    n, onehot = len(t), np.eye(k)[t]
    row_log_loss = -np.log(np.clip(proba[np.arange(n), t], _EPS, 1 - _EPS))
    row_brier = ((onehot - proba) ** 2).sum(axis=1) * (0.5 if binary else 1.0)
    log_loss, brier = (weights @ np.c_[row_log_loss, row_brier]).T / n   # one pass over the weights
    ranked = [_ranked_metrics(proba[:, c], t == c, weights, precision=binary) for c in ([1] if binary else range(k))]
    stats = {"log_loss": log_loss, "brier": brier, "roc_auc": np.mean([auc for auc, _ in ranked], axis=0)}
    if binary:
        stats["pr_auc"] = ranked[0][1]
    return stats


def _ranked_metrics(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray,
                    precision: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """ROC AUC and (when `precision`) average precision of `scores` for hard 0/1 labels `positive`,
    once per row of `weights` (B, n), ties as sklearn counts them.

    Positives and negatives are each sorted once by descending score, and every weight row gets
    one cumulative sum of each; a positive with score s then reads, from the negatives' sums, the
    negative weight scoring above s and at s or above (two bounds that coincide without ties):
    AUC = 1 - sum_pos w (above + at_or_above) / 2 / (P N) (a tied pair counts one half), and
    AP = sum_pos w TP(>= s) / (TP(>= s) + FP(>= s)) / P, sklearn's sum over thresholds of the
    recall gain times the precision. That is a few passes over half the weight matrix each,
    instead of cumulative sums over every row for every quantity. NaN where P or N is zero.
    """
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    pos, neg = pos[np.argsort(-scores[pos], kind="stable")], neg[np.argsort(-scores[neg], kind="stable")]
    down_pos, down_neg = -scores[pos], -scores[neg]   # ascending: what searchsorted reads
    w = weights[:, pos]
    cum_pos, cum_neg = _cumulative(w), _cumulative(weights[:, neg])
    total_pos, total_neg = cum_pos[:, -1], cum_neg[:, -1]
    above = np.searchsorted(down_neg, down_pos, side="left")
    at_or_above = np.searchsorted(down_neg, down_pos, side="right")
    neg_at_or_above = cum_neg[:, at_or_above]
    beaten = np.einsum("ij,ij->i", w, neg_at_or_above)   # pairs a negative ranks at or above the positive
    if not np.array_equal(above, at_or_above):          # ties: a tied pair counts one half
        beaten = (beaten + np.einsum("ij,ij->i", w, cum_neg[:, above])) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = 1 - beaten / (total_pos * total_neg)
        if not precision:
            return auc, None
        ranked = np.searchsorted(down_pos, down_pos, side="right")   # positives at or above each one's score
        tp = cum_pos[:, 1:] if np.array_equal(ranked, np.arange(1, len(pos) + 1)) else cum_pos[:, ranked]
        share = np.add(tp, neg_at_or_above, out=neg_at_or_above)   # predicted positive at s (in place)
        np.divide(tp, np.maximum(share, np.finfo(float).tiny, out=share), out=share)   # precision; 0 / 0 -> 0
        return auc, np.einsum("ij,ij->i", w, share) / total_pos


def _cumulative(weights: np.ndarray) -> np.ndarray:
    """(B, m + 1) running sums of each row of `weights` (B, m), a column of zeros first."""
    out = np.zeros((weights.shape[0], weights.shape[1] + 1))
    np.cumsum(weights, axis=1, out=out[:, 1:])
    return out


def batch_confusion(t: np.ndarray, p: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """(B, k, k) confusion matrices [batch, true, pred], one per row of `weights` (B, n): the weights
    times each row's one-hot cell, one matrix product (BLAS, one pass over the weights)."""
    n = len(p)
    cells = np.zeros((n, k * k))
    cells[np.arange(n), t * k + p] = 1.0
    return (weights @ cells).reshape(-1, k, k)


def confusion_scores(cm: np.ndarray, binary: bool) -> dict[str, np.ndarray]:
    """Metrics of each (true, pred) matrix in cm with sklearn's definitions (zero_division=0,
    F1 = 2tp / (2tp + fp + fn)); the matrices may hold fractional (expected) counts."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true_sum, pred_sum = cm.sum(axis=2), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = {
            "precision": np.nan_to_num(tp / pred_sum),
            "recall": np.nan_to_num(tp / true_sum),
            "f1": np.nan_to_num(2 * tp / (true_sum + pred_sum)),
        }
        out = {name: v[:, 1] if binary else v.mean(axis=1) for name, v in per_class.items()}
        out["f1_macro"] = per_class["f1"].mean(axis=1)
        out["f1_weighted"] = (per_class["f1"] * true_sum).sum(axis=1) / true_sum.sum(axis=1)
        out["accuracy"] = tp.sum(axis=1) / cm.sum(axis=(1, 2))
    return out


def batch_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC of `scores` for each row of `positive` or `weights` (B, n): sklearn's AUC with
    `weights` as sample_weight and `positive` the 0/1 labels (or each row's probability of
    being positive: soft labels). NaN where a row lacks positive or negative weight."""
    return _auc_of_groups(*_tie_groups(scores, positive, weights))


def midranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of `scores`, tied scores sharing their mean rank (what Mann-Whitney sums)."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def rank_sum_auc(rank_sums: np.ndarray, positives: np.ndarray, n: int) -> np.ndarray:
    """ROC AUC of fixed scores for label sets given by the sum of their positives' `midranks` and
    their number of positives among `n` rows: Mann-Whitney, (R - P(P+1)/2) / (P (n - P)). With hard
    0/1 label rows L (B, n), `L @ midranks(scores)` gives every row's rank sum in one matrix
    product (no per-row sort or cumulative sum). NaN where a row lacks a positive or a negative."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sums - positives * (positives + 1) / 2) / (positives * (n - positives))


def _tie_groups(scores, positive, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per group of equal scores, groups in ascending score order.
    Sorts once; every weight row then costs one gather and one pass."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    distinct = s[1:] != s[:-1]
    y = np.atleast_2d(positive)[:, order]
    w = None if weights is None else np.atleast_2d(weights)[:, order]
    if distinct.all():   # no ties (continuous scores, the usual case): each row is its own group
        pos = y.astype(float) if w is None else w * y
        return pos, (1.0 if w is None else w) - pos
    starts = np.flatnonzero(np.r_[True, distinct])
    if w is None:
        total = np.diff(np.r_[starts, len(s)]).astype(float)
    else:
        y, total = w * y, np.add.reduceat(w, starts, axis=1, dtype=float)
    pos = np.add.reduceat(y, starts, axis=1, dtype=float)
    return pos, total - pos


def _auc_of_groups(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney: weighted share of (negative, positive) pairs ranked correctly, ties one half."""
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
