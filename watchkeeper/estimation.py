"""Performance estimated without labels: confidence-based performance estimation (CBPE).

Labels arrive days or weeks after predictions, but a classifier's probabilities already
say how often it expects to be right. If P(y = c | x) = p_c(x) holds in production as it
did on the reference, the window's confusion matrix has the expected value
E[CM][c, k] = sum over rows predicted k of p_c(x), and accuracy, precision, recall and F1
follow from it; ROC AUC follows by ranking the scores with soft labels p(x). The
estimate only stays honest under covariate shift: under concept drift (P(y | x)
changes) the realised metric falls while the estimate does not, and that gap is the signal.

Raw probabilities are often miscalibrated (boosted trees, over-regularised or
class-weighted models), so each class's probabilities are first mapped through an
isotonic regression learned on the reference, but only when cross-validation says it
helps: isotonic regression is a step function fitted to finite data, and applied to an
already calibrated model it adds noise instead of removing bias. The test is the
out-of-fold Brier score (a proper scoring rule, unlike the binned ECE) of the isotonic
map against that of the raw scores.

The interval is a prediction interval for the *realised* metric: the percentiles of
the metric over `n_boot` label sets drawn from the calibrated probabilities (the
Poisson-binomial spread of, e.g., the number of correct predictions). The calibration is
itself learned from finite data, so each draw first draws the calibration: every pooled
isotonic block's rate from its Jeffreys posterior Beta(positives + 1/2, negatives + 1/2).
Without that, a block of 30 positives out of 30 would claim certainty and the interval
would be too narrow. A realised value outside the interval means the relation between
scores and outcomes learned on the reference no longer holds.

Reference: NannyML, "Confidence-based Performance Estimation (CBPE)",
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from sklearn.isotonic import isotonic_regression
from sklearn.model_selection import KFold

from watchkeeper.performance import (
    MetricsInputError,
    MetricValue,
    batch_auc,
    batch_confusion,
    confusion_scores,
    encode_labels,
    midranks,
    percentile_interval,
    rank_sum_auc,
    validate_proba,
)

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
CALIBRATION_FOLDS = 5


@dataclass
class IsotonicCalibration:
    """Isotonic map from a score to P(y | score), kept as its pooled blocks (score range,
    positives, rows) so that its own uncertainty can be drawn. Between blocks it
    interpolates linearly and it clips outside the reference range, as sklearn's
    `IsotonicRegression(out_of_bounds="clip")` predicts."""

    lower: np.ndarray
    upper: np.ndarray
    positives: np.ndarray
    count: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray, y: np.ndarray) -> IsotonicCalibration:
        unique, row_value = np.unique(scores, return_inverse=True)
        count, positives = np.bincount(row_value).astype(float), np.bincount(row_value, weights=y)
        rate = isotonic_regression(positives / count, sample_weight=count, y_min=0.0, y_max=1.0)
        starts = np.flatnonzero(np.r_[True, rate[1:] != rate[:-1]])
        ends = np.r_[starts[1:], len(unique)] - 1
        return cls(unique[starts], unique[ends], np.add.reduceat(positives, starts), np.add.reduceat(count, starts))

    @property
    def rate(self) -> np.ndarray:
        """Each block's share of positives: the isotonic fit."""
        return self.positives / self.count

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return self.interpolate(scores, self.rate[None])[0]

    def draw_rates(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """(n_draws, blocks) rates from each block's Jeffreys posterior."""
        return rng.beta(self.positives + 0.5, self.count - self.positives + 0.5, size=(n_draws, len(self.count)))

    def interpolate(self, scores: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """(B, n) probabilities of `scores` for each row of block rates (B, blocks)."""
        x = np.c_[self.lower, self.upper].ravel()
        block = np.repeat(np.arange(len(self.lower)), 2)
        distinct = np.r_[True, x[1:] != x[:-1]]
        x, block = x[distinct], block[distinct]
        if len(x) == 1:
            return np.repeat(rates[:, block], len(scores), axis=1)
        right = np.clip(np.searchsorted(x, scores, side="right"), 1, len(x) - 1)
        left = right - 1
        share = np.clip((scores - x[left]) / (x[right] - x[left]), 0.0, 1.0)
        return rates[:, block[left]] * (1 - share) + rates[:, block[right]] * share

    def to_dict(self) -> dict:
        return {name: getattr(self, name).tolist() for name in ("lower", "upper", "positives", "count")}

    @classmethod
    def from_dict(cls, data: dict) -> IsotonicCalibration:
        return cls(*(np.asarray(data[name], dtype=float) for name in ("lower", "upper", "positives", "count")))


class CBPE:
    """Expected accuracy, precision, recall, F1 and ROC AUC of a probabilistic classifier from its
    probabilities alone (binary: positive class, the last of `classes`; multiclass: macro).

    Parameters: `n_boot` simulated label sets for the interval (default 200), `confidence`
    of the interval (0.9), `seed` of the simulation and of the calibration folds (0).
    Learned in `fit`: `classes_`, and `calibrators_` (one per calibrated column: the
    positive class for binary, every class for multiclass; None where the raw scores won).

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=4000)
    >>> y = (rng.uniform(size=4000) < p).astype(int)
    >>> cbpe = CBPE().fit(np.c_[1 - p, p], y, classes=[0, 1])
    >>> accuracy = cbpe.estimate(np.c_[1 - p, p])[0]  # E[max(p, 1 - p)] = 0.75 for uniform p
    >>> accuracy.name, round(accuracy.value, 2)
    ('accuracy', 0.75)
    """

    def __init__(self, n_boot: int = 200, confidence: float = 0.9, seed: int = 0):
        self.n_boot = n_boot
        self.confidence = confidence
        self.seed = seed

    def fit(self, reference_proba, reference_y, classes: Sequence) -> CBPE:
        """Learn the per-class calibration on reference data with known labels."""
        classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
        if len(classes) < 2:
            raise MetricsInputError(f"CBPE needs at least 2 classes, got {classes}")
        y = encode_labels(np.asarray(reference_y).ravel(), classes)
        proba = validate_proba(reference_proba, len(y), len(classes))
        if len(y) < 10 * CALIBRATION_FOLDS:
            raise MetricsInputError(f"CBPE needs at least {10 * CALIBRATION_FOLDS} reference rows, got {len(y)}")
        absent = [c for i, c in enumerate(classes) if not (y == i).any()]
        if absent:
            raise MetricsInputError(f"reference lacks classes {absent[:5]}; CBPE calibrates every class on it")
        self.classes_ = classes
        self.calibrators_ = [_fit_calibrator(proba[:, c], (y == c).astype(float), self.seed)
                             for c in self._columns()]
        return self

    def calibrate(self, proba) -> np.ndarray:
        """Calibrated probabilities, (n, k) in classes order; multiclass rows renormalised to sum to 1."""
        self._check_fitted()
        proba = validate_proba(proba, len(proba), len(self.classes_))
        mapped = np.column_stack([self._column(proba, i)[0] for i in range(len(self.calibrators_))])
        if len(self.classes_) == 2:
            return np.c_[1 - mapped[:, 0], mapped[:, 0]]
        mapped = _floor(mapped)
        return mapped / mapped.sum(axis=1, keepdims=True)

    def estimate(self, proba, y_pred=None) -> list[MetricValue]:
        """Estimated metrics of one window with `confidence` prediction intervals for the realised values.

        `y_pred` defaults to the most probable class of `proba` (what `predict` does for
        sklearn classifiers); pass it for models with a tuned threshold. An empty window
        gives None everywhere.
        """
        self._check_fitted()
        k, binary = len(self.classes_), len(self.classes_) == 2
        proba = validate_proba(proba, len(proba), k)
        if len(proba) == 0:
            return [MetricValue(name, None, None, None) for name in ESTIMATED_METRICS]
        pred = proba.argmax(axis=1) if y_pred is None else encode_labels(np.asarray(y_pred).ravel(), self.classes_)
        if len(pred) != len(proba):
            raise MetricsInputError(f"y_pred has {len(pred)} rows but proba has {len(proba)}")
        cal = self.calibrate(proba)
        expected_cm = np.stack([np.bincount(pred, weights=cal[:, c], minlength=k) for c in range(k)])
        points = confusion_scores(expected_cm[None], binary)
        points["roc_auc"] = self._auc(proba, lambda scores, c: batch_auc(scores, cal[None, :, c]))
        boots = self._drawn_metrics(proba, pred, self._draw_labels(proba, np.random.default_rng(self.seed)))
        return [percentile_interval(name, float(points[name][0]), boots[name], self.confidence)
                for name in ESTIMATED_METRICS]

    def to_dict(self) -> dict:
        """JSON-safe parameters and learned state, stored with the model version's reference profile."""
        self._check_fitted()
        return {"n_boot": self.n_boot, "confidence": self.confidence, "seed": self.seed, "classes": self.classes_,
                "calibrators": [None if cal is None else cal.to_dict() for cal in self.calibrators_]}

    @classmethod
    def from_dict(cls, data: dict) -> CBPE:
        try:
            cbpe = cls(n_boot=data["n_boot"], confidence=data["confidence"], seed=data["seed"])
            cbpe.classes_ = list(data["classes"])
            cbpe.calibrators_ = [None if cal is None else IsotonicCalibration.from_dict(cal)
                                 for cal in data["calibrators"]]
        except (KeyError, TypeError) as err:
            raise MetricsInputError(f"not a saved CBPE: missing or malformed {err}") from None
        if len(cbpe.calibrators_) != len(cbpe._columns()):
            raise MetricsInputError(
                f"saved CBPE has {len(cbpe.calibrators_)} calibrators for {len(cbpe.classes_)} classes")
        return cbpe

    def _columns(self) -> list[int]:
        """Probability columns that are calibrated and scored: binary uses the positive class only."""
        return [1] if len(self.classes_) == 2 else list(range(len(self.classes_)))

    def _column(self, proba: np.ndarray, i: int, rates: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities of column i, (1, n) from the fit or (B, n) from drawn block rates."""
        calibrator, scores = self.calibrators_[i], proba[:, self._columns()[i]]
        if calibrator is None:
            return scores[None]
        return calibrator.interpolate(scores, calibrator.rate[None] if rates is None else rates)

    def _drawn_metrics(self, proba: np.ndarray, pred: np.ndarray, drawn: np.ndarray) -> dict[str, np.ndarray]:
        """The metrics of every drawn label set (B, n). For each scored class, its indicator times
        [the one-hot predictions, the class's score midranks] is one matrix product: that class's
        row of every confusion matrix and every rank sum for its AUC. Binary scores the positive
        class only; the negative row is what it leaves of each predicted class."""
        k, n = len(self.classes_), len(pred)
        predicted = np.eye(k)[pred]
        cm, aucs = np.empty((len(drawn), k, k)), []
        for c in self._columns():
            products = (drawn == c).astype(float) @ np.c_[predicted, midranks(proba[:, c])]
            cm[:, c] = products[:, :k]
            aucs.append(rank_sum_auc(products[:, k], products[:, :k].sum(axis=1), n))
        if k == 2:
            cm[:, 0] = predicted.sum(axis=0) - cm[:, 1]
        return confusion_scores(cm, binary=k == 2) | {"roc_auc": np.mean(aucs, axis=0)}

    def _draw_labels(self, proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n_boot, n) class indices: each draw takes a calibration from its posterior, then one label
        per row from it. Two passes over the classes (normaliser, then cumulative shares) keep
        memory at a few (n_boot, n) arrays whatever the number of classes."""
        rates = [None if cal is None else cal.draw_rates(self.n_boot, rng) for cal in self.calibrators_]
        u = rng.random((self.n_boot, len(proba)))
        if len(self.classes_) == 2:
            return (u < self._column(proba, 0, rates[0])).view(np.int8)   # 0/1 without a copy
        column = [lambda i=i: _floor(self._column(proba, i, rates[i])) for i in range(len(self.classes_))]
        total = sum(c() for c in column)
        labels, cumulative = np.zeros(u.shape, dtype=np.int64), np.zeros(u.shape)
        for c in column[:-1]:
            cumulative += c()
            labels += u * total > cumulative
        return labels

    def _auc(self, proba: np.ndarray, auc: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
        """Binary AUC of the positive column, or one-vs-rest macro AUC; `auc(scores, c)` gives the (B,)
        AUCs of class c's scores."""
        return np.mean([auc(proba[:, c], c) for c in self._columns()], axis=0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrators_"):
            raise MetricsInputError("CBPE is not fitted: call fit on reference data first (or from_dict)")


def estimation_error(estimated: list[MetricValue], realised: list[MetricValue]) -> dict[str, float]:
    """|estimate - realised| per metric defined on both sides (a window without labels has no error yet)."""
    actual = {m.name: m.value for m in realised}
    return {m.name: abs(m.value - actual[m.name]) for m in estimated
            if m.value is not None and actual.get(m.name) is not None}


def _fit_calibrator(scores: np.ndarray, y: np.ndarray, seed: int) -> IsotonicCalibration | None:
    """Isotonic calibration of one column, kept only if it beats the raw scores out of fold (Brier)."""
    out_of_fold = np.empty_like(scores)
    for train, test in KFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed).split(scores):
        out_of_fold[test] = IsotonicCalibration.fit(scores[train], y[train]).predict(scores[test])
    if np.mean((out_of_fold - y) ** 2) >= np.mean((scores - y) ** 2):
        return None
    return IsotonicCalibration.fit(scores, y)


def _floor(proba: np.ndarray) -> np.ndarray:
    """Multiclass rows are renormalised; a row that isotonic maps to all zeros becomes uniform."""
    return np.clip(proba, 1e-12, None)
