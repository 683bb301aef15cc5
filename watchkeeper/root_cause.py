"""Root cause: when a model degrades, which inputs, which segments, and is it the inputs or the relation?

A drift report ranks features by how far they moved, but a large move in a feature the model
ignores explains nothing. So each drifted feature is weighted by its importance to the model
(permutation importance, measured once per model version on the reference), the segments whose
metric fell most are listed, and the change is classified:

- covariate: performance degraded and inputs the model relies on drifted (or all inputs
  drifted jointly, per the multivariate detector, though no single feature did);
- concept: performance degraded while the inputs the model relies on did not drift, so the
  relation between inputs and label changed;
- mixed: degraded, important inputs drifted, AND there is separate evidence that the relation
  changed too (``concept_drift=True``, e.g. the realised metric is worse than the one estimated
  from the inputs, or an error-stream detector fired on unchanged inputs);
- unknown: performance did not degrade (or could not be measured): nothing to attribute; the
  drifted features are still ranked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from watchkeeper.performance import REGRESSION

COVARIATE, CONCEPT, MIXED, UNKNOWN = "covariate", "concept", "mixed", "unknown"
MIN_IMPORTANCE = 0.05  # a feature with less than 5% of the model's reliance cannot explain a degradation


def model_scorer(task: str) -> Callable[[Any, pd.DataFrame, Any], float]:
    """Accuracy for classifiers, negated MAE for regressors, from `predict` alone: a scorer for any
    model with scikit-learn's names (it needs neither probabilities nor a scikit-learn estimator)."""
    from sklearn.metrics import accuracy_score, mean_absolute_error

    if task == REGRESSION:
        return lambda model, X, y: -mean_absolute_error(y, model.predict(X))
    return lambda model, X, y: accuracy_score(y, model.predict(X))


def feature_importance(model, X: pd.DataFrame, y, scoring: str | Callable | None = None, n_repeats: int = 5,
                       seed: int = 0) -> dict[str, float]:
    """Permutation importance of every column of X, normalised to sum to 1.

    Computed once per model version on its reference (validation) data: how much the score
    drops when a column is shuffled. Negative means (shuffling helped: noise) count as 0. A model
    that relies on no feature at all gets 0 everywhere rather than a made-up split.
    """
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"X must be a DataFrame with feature names, got {type(X).__name__}")
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"X and y must be non-empty and of equal length, got {len(X)} and {len(y)} rows")
    result = permutation_importance(model, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed)
    drop = np.clip(result.importances_mean, 0.0, None)
    total = drop.sum()
    shares = drop / total if total > 0 else drop
    return {str(name): float(share) for name, share in zip(X.columns, shares)}


@dataclass(frozen=True)
class RootCause:
    """The ranked likely causes of one window's degradation, and a one-paragraph explanation."""

    kind: str  # covariate | concept | mixed | unknown
    features: list[dict]  # drifted features, most likely cause first: name, effect_size, importance, score
    segments: list[dict]  # segment, delta; the worst first
    explanation: str

    def to_dict(self) -> dict:
        return asdict(self)


def rank_causes(drift_report: Mapping, importance: Mapping[str, float], segment_deltas: Mapping[str, float] | None,
                covariate_drift: bool, performance_degraded: bool, concept_drift: bool | None = None,
                higher_is_better: bool = True, min_importance: float = MIN_IMPORTANCE) -> RootCause:
    """Rank the drifted features by effect size x importance and classify the change.

    The inputs explain a degradation when a drifted feature carries at least `min_importance`
    of the model, or when `covariate_drift` (the window's input-drift verdict, e.g. the
    multivariate detector) fired although no single feature drifted: a joint shift. Drift only
    in features the model barely uses explains nothing. `segment_deltas` maps a segment to its
    metric's change from the reference (current minus reference); `higher_is_better` says
    which sign is worse.
    """
    features = _ranked_features(drift_report, importance)
    explaining = [f for f in features if f["importance"] >= min_importance]
    joint = covariate_drift and not features
    kind = _kind(performance_degraded, bool(explaining) or joint, concept_drift)
    sign = 1.0 if higher_is_better else -1.0
    segments = sorted(({"segment": str(k), "delta": float(v)} for k, v in (segment_deltas or {}).items()),
                      key=lambda s: sign * s["delta"])
    return RootCause(kind, features, segments, _explain(kind, features, explaining, segments, sign))


def _ranked_features(drift_report: Mapping, importance: Mapping[str, float]) -> list[dict]:
    drifted = [f for f in drift_report["features"] if f["drifted"]]
    unknown = [f["name"] for f in drifted if f["name"] not in importance]
    if unknown:
        raise ValueError(f"importance has no entry for drifted features: {', '.join(unknown)}")
    rows = [{"name": f["name"], "effect_size": f["effect_size"], "effect_metric": f.get("effect_metric"),
             "importance": float(importance[f["name"]]),
             "score": float(importance[f["name"]]) * (f["effect_size"] or 0.0)} for f in drifted]
    return sorted(rows, key=lambda r: (-r["score"], -r["importance"], r["name"]))


def _kind(degraded: bool, explained: bool, concept_drift: bool | None) -> str:
    if not degraded:
        return UNKNOWN
    if not explained:
        return CONCEPT
    return MIXED if concept_drift else COVARIATE


def _explain(kind: str, features: list[dict], explaining: list[dict], segments: list[dict], sign: float) -> str:
    def named(rows: list[dict]) -> str:
        if not rows:
            return "jointly, though no single feature drifted"
        return ", ".join(f"{r['name']} (effect {_num(r['effect_size'])}, importance {r['importance']:.2f})"
                         for r in rows[:3])

    text = {
        UNKNOWN: "Performance did not degrade: nothing to attribute."
                 + (f" Drifted inputs, by weighted effect: {named(features)}." if features else ""),
        CONCEPT: "Performance degraded while the inputs the model relies on did not drift: the relation "
                 "between inputs and label changed (concept drift)."
                 + (f" Inputs that drifted carry little importance: {named(features)}." if features else ""),
        COVARIATE: "Performance degraded and inputs the model relies on drifted (covariate shift): "
                   f"{named(explaining)}.",
        MIXED: f"Performance degraded, inputs the model relies on drifted ({named(explaining)}), and the relation "
               "between inputs and label changed too.",
    }[kind]
    worse = [s for s in segments if sign * s["delta"] < 0]
    if kind != UNKNOWN and worse:
        text += " Segments that fell most: " + ", ".join(f"{s['segment']} ({s['delta']:+.3f})" for s in worse[:3]) + "."
    return text


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"
