"""Calibration drift, and the cheap fix: recalibrating the champion's probabilities on recent labels.

When the inputs look like the training data but the labels have moved (a new base rate,
a uniform change of risk), the champion usually still *ranks* cases well and only its
probabilities are off. Refitting a one-dimensional calibration map on recent labels
fixes that at a fraction of the cost and risk of a full retrain.

Reliability compares a stated probability with whether the event happened: for binary
models the positive class's probability (as sklearn's `calibration_curve`), for
multiclass models the top label's (Guo et al., 2017, "On Calibration of Modern Neural
Networks"), in equal-width probability bins. Two numbers come out of the bins:

- significance, by consistency resampling (Bröcker & Smith, 2007, "Increasing the
  Reliability of Reliability Diagrams"): outcomes are redrawn from the model's own
  probabilities, which is what a calibrated model's outcomes look like, and the p-value
  is the share of redrawn binned squared errors at least as large as the observed one;
- size, as the debiased binned L2 calibration error (Kumar, Liang & Ma, 2019, "Verified
  Uncertainty Calibration"): the plain estimate is inflated by each bin's sampling
  noise, most on small samples, so the noise's expected share is subtracted. This makes
  a 50-row reference and a 5,000-row window comparable.

Like drift, calibration has drifted only when the miscalibration is both significant
(p < alpha) and worse than the model's own on its reference data by at least
`min_increase`: a model that was underconfident when it was trained has not drifted.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss

METHODS = ("isotonic", "sigmoid")
# What a recalibrated model holds beyond what skops trusts by default: scikit-learn's own calibrators.
TRUSTED_TYPES = ("sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration")


class CalibrationInputError(ValueError):
    """Probabilities and labels that cannot be judged; one line."""


def expected_calibration_error(stated: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the bin-share-weighted |event rate - mean stated probability| (reported; familiar to most)."""
    events, total, _ = _bins(stated, outcome[None, :].astype(float), n_bins)
    return float(np.abs(events - total).sum() / len(stated))


def calibration_error(stated: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float:
    """Debiased binned L2 calibration error (Kumar et al., 2019): with n_b rows in bin b, w_b their share,
    r_b their event rate and p_b their mean stated probability, the square root of
    sum_b w_b [(r_b - p_b)^2 - r_b (1 - r_b) / (n_b - 1)], floored at 0."""
    events, total, counts = _bins(stated, outcome[None, :].astype(float), n_bins)
    filled = counts > 1   # a one-row bin has no variance estimate; it carries no evidence either way
    rate, mean_stated, n_b = events[0, filled] / counts[filled], total[filled] / counts[filled], counts[filled]
    squared = ((rate - mean_stated) ** 2 - rate * (1 - rate) / (n_b - 1)) @ n_b / len(stated)
    return float(np.sqrt(max(squared, 0.0)))


def calibration_drifted(proba: np.ndarray, y: Sequence, classes: Sequence,
                        reference: tuple[np.ndarray, Sequence] | None = None, *, n_bins: int = 10,
                        alpha: float = 0.01, min_increase: float = 0.05, n_boot: int = 1000,
                        seed: int = 0) -> tuple[bool, dict]:
    """Whether `proba` (columns in `classes` order) have lost their calibration on the labels `y`.

    `reference` is (proba, labels) of the same model on its reference validation data; its
    calibration error is the baseline. Without it the baseline is a calibrated model (0).
    """
    recent = reliability(proba, y, classes, n_bins, n_boot, seed)
    baseline = None if reference is None else reliability(*reference, classes, n_bins, n_boot, seed)
    increase = recent["calibration_error"] - (baseline["calibration_error"] if baseline else 0.0)
    drifted = recent["p_value"] < alpha and increase >= min_increase
    return drifted, {**recent, "reference": baseline, "increase": increase, "alpha": alpha,
                     "min_increase": min_increase, "drifted": drifted}


def reliability(proba: np.ndarray, y: Sequence, classes: Sequence, n_bins: int = 10, n_boot: int = 1000,
                seed: int = 0) -> dict:
    """Calibration of `proba` on `y`: its size, the p-value of 'calibrated', and the familiar scores."""
    proba, y = np.asarray(proba, dtype=float), np.asarray(y)
    _check(proba, y, classes)
    stated, outcome = _reliability_pairs(proba, y, classes)
    redrawn = np.random.default_rng(seed).random((n_boot, len(y))) < stated
    observed = _squared_gaps(stated, outcome[None, :], n_bins)[0]
    simulated = _squared_gaps(stated, redrawn, n_bins)
    return {"calibration_error": calibration_error(stated, outcome, n_bins), "plain_squared_error": float(observed),
            "p_value": (1 + int((simulated >= observed).sum())) / (1 + n_boot),
            "ece": expected_calibration_error(stated, outcome, n_bins),
            "brier": brier_score(proba, y, classes), "n": int(len(y))}


def brier_score(proba: np.ndarray, y: Sequence, classes: Sequence) -> float:
    """sklearn's Brier score: of the positive (last) class for binary, summed over classes otherwise."""
    if len(classes) == 2:
        return float(brier_score_loss(y, proba[:, 1], pos_label=classes[1]))
    return float(brier_score_loss(y, proba, labels=list(classes)))


def recalibrate(estimator: Any, X: pd.DataFrame, y: Sequence, method: str = "isotonic") -> CalibratedClassifierCV:
    """The champion, unchanged, behind a calibration map fitted on recent labelled rows.

    Isotonic regression follows any monotone distortion but needs about a thousand rows;
    sigmoid (Platt) scaling is the choice for fewer.
    """
    if method not in METHODS:
        raise CalibrationInputError(f"unknown calibration method {method!r}; expected one of {list(METHODS)}")
    return CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X, y)


def _reliability_pairs(proba: np.ndarray, y: np.ndarray, classes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(stated probability, whether the event happened): of the positive class for binary models,
    as sklearn's `calibration_curve`, so a change of base rate shows in full; of the top label otherwise."""
    if len(classes) == 2:
        return proba[:, 1], (y == classes[1]).astype(float)
    return proba.max(axis=1), (np.asarray(classes)[proba.argmax(axis=1)] == y).astype(float)


def _bins(stated: np.ndarray, outcome: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: events of each row of `outcome` (resamples x rows), stated sum, row count."""
    membership = np.zeros((len(stated), n_bins))
    membership[np.arange(len(stated)), np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], stated)] = 1.0
    return outcome @ membership, stated @ membership, membership.sum(axis=0)


def _squared_gaps(stated: np.ndarray, outcome: np.ndarray, n_bins: int) -> np.ndarray:
    """Plain binned squared calibration error of each row of `outcome`: the test statistic."""
    events, total, counts = _bins(stated, outcome, n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.where(counts > 0, (events - total) / counts, 0.0)
    return (gaps**2 * counts).sum(axis=1) / len(stated)


def _check(proba: np.ndarray, y: np.ndarray, classes: Sequence) -> None:
    if proba.ndim != 2 or proba.shape != (len(y), len(classes)):
        raise CalibrationInputError(f"proba must have shape ({len(y)}, {len(classes)}), got {proba.shape}")
    if len(y) == 0:
        raise CalibrationInputError("no labelled rows to judge calibration on")
    if not np.isfinite(proba).all() or (proba < 0).any() or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-6):
        raise CalibrationInputError("proba must be finite, non-negative, and sum to 1 on every row")
    unknown = pd.unique(y[~np.isin(y, np.asarray(classes))])
    if len(unknown):
        raise CalibrationInputError(f"labels {list(unknown[:5])} not in classes {list(classes)[:10]}")
