"""The reference of one model version: what "normal" is for it, built once, validated on load.

A `ModelReference` holds everything every window is judged against: the features the model
reads and their profile (watchkeeper.profile), the task and classes, the reference
performance on validation data, permutation importance (for root cause), a CBPE estimator
(performance while labels lag) and the joint-drift detector. `build_reference` makes it from
the champion's training and validation data; the `reference_profile` asset stores it, and
every window step decodes it once with `ModelReference.from_stored`, which refuses a
reference that does not hold together with one line naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.flavors import NO_PROBABILITIES, from_estimator, plain
from watchkeeper.performance import (
    BINARY, MULTICLASS, PRIMARY_METRIC, PROBABILITY_METRICS, REGRESSION, MetricValue, compute_metrics,
)
from watchkeeper.privacy.sensitive import SensitiveColumns, forget_exact_values
from watchkeeper.profile import ReferenceProfile, fit_profile
from watchkeeper.store import StoredProfile

TASKS = (BINARY, MULTICLASS, REGRESSION)
TARGET = "target"   # the label column of reference frames


class ReferenceError(ValueError):
    """A stored reference that cannot be used (one line: model, version and what is wrong)."""


@dataclass(frozen=True)
class ModelReference:
    model: str
    version: str
    task: str
    features: list[str]
    profile: ReferenceProfile
    metrics: dict[str, MetricValue]
    classes: list | None = None                  # classifiers: the classes, in predict_proba order
    importance: dict[str, float] = field(default_factory=dict)
    cbpe: dict | None = None                     # CBPE.to_dict(); decoded where estimates are made
    joint_detector: str | None = None            # multivariate.dump_detector(); None below two features
    probabilities: bool = True                   # False: the model only predicts labels (see watchkeeper.flavors)
    flavor: str | None = None                    # the MLflow flavour it was loaded with
    feature_service: str | None = None           # Feast: windows of entity rows get their features from it
    sensitive: SensitiveColumns = SensitiveColumns()   # masked before profiling, and in every window

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.task]

    @property
    def is_classifier(self) -> bool:
        return self.task != REGRESSION

    def proba_columns(self) -> list[str]:
        """The inference log's probability columns; none for a model that gives no probabilities."""
        return [f"proba_{c}" for c in self.classes or []] if self.probabilities else []

    def limits(self) -> list[str]:
        """What cannot be measured for this model, and why (shown with its reference)."""
        if self.is_classifier and not self.probabilities:
            return [f"{NO_PROBABILITIES}: {', '.join(PROBABILITY_METRICS)}, CBPE estimates and calibration "
                    "are not computed"]
        return []

    def to_stored(self) -> tuple[dict, dict]:
        """(profile, reference) as the store keeps them (StoredProfile.profile / .reference)."""
        return self.profile.to_dict(), {
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()}, "classes": self.classes,
            "features": self.features, "importance": self.importance, "cbpe": self.cbpe,
            "pca_detector": self.joint_detector, "probabilities": self.probabilities, "flavor": self.flavor,
            "feature_service": self.feature_service,
            "sensitive": {"columns": sorted(self.sensitive.columns), "min_count": self.sensitive.min_count}}

    @classmethod
    def from_stored(cls, stored: StoredProfile) -> ModelReference:
        """Decode and check a stored reference; ReferenceError names the first problem."""
        where = f"reference of {stored.model} v{stored.version}"
        if stored.error:
            raise ReferenceError(f"{where}: {stored.error}")
        try:
            profile = ReferenceProfile.from_dict(stored.profile)
            profile.require_rows()
            data = stored.reference
            reference = cls(
                stored.model, stored.version, stored.task, [str(f) for f in data["features"]], profile,
                {name: MetricValue(**m) for name, m in (data.get("metrics") or {}).items()},
                list(data["classes"]) if data.get("classes") is not None else None,
                {str(k): float(v) for k, v in (data.get("importance") or {}).items()},
                data.get("cbpe"), data.get("pca_detector"), bool(data.get("probabilities", True)),
                data.get("flavor"), data.get("feature_service"), _sensitive(data.get("sensitive")))
        except (KeyError, TypeError, ValueError) as error:
            raise ReferenceError(f"{where}: {type(error).__name__}: {error}".splitlines()[0]) from None
        problem = reference._problem()
        if problem:
            raise ReferenceError(f"{where}: {problem}")
        return reference

    def _problem(self) -> str | None:
        if self.task not in TASKS:
            return f"unknown task {self.task!r} (one of {', '.join(TASKS)})"
        if not self.features:
            return "no features"
        unprofiled = [f for f in self.features if f not in self.profile.features]
        if unprofiled:
            return f"features without a profile: {', '.join(unprofiled)}"
        if self.is_classifier and not self.classes:
            return f"a {self.task} model needs its classes"
        if self.metrics and self.primary_metric not in self.metrics:
            return f"reference performance lacks the primary metric {self.primary_metric}"
        return None


def _sensitive(stored: dict | None) -> SensitiveColumns:
    if not stored:
        return SensitiveColumns()
    return SensitiveColumns(frozenset(str(c) for c in stored["columns"]), int(stored["min_count"]))


def build_reference(model: str, version: str, task: str, train: pd.DataFrame, validation: pd.DataFrame,
                    estimator: Any, sensitive: SensitiveColumns = SensitiveColumns(),
                    feature_service: str | None = None) -> ModelReference:
    """Profile the training rows and measure the model on the validation rows.

    `estimator` is anything with scikit-learn's names (a `watchkeeper.flavors.ScoringModel`
    or an estimator). A classifier without probabilities gets its label metrics and no CBPE;
    one that cannot name its classes takes them from the validation labels and its predictions.
    Sensitive columns are masked before anything is profiled or fitted on the training rows; the
    model is measured on the validation rows as they are (it saw raw values), and only aggregates
    of that (metrics, importance, calibration) are kept.
    """
    from watchkeeper.estimation import CBPE
    from watchkeeper.root_cause import feature_importance, model_scorer

    scoring = estimator if hasattr(estimator, "has_proba") else from_estimator(estimator)
    features = [c for c in train.columns if c != TARGET]
    profiled = sensitive.mask(train[features])
    profile = forget_exact_values(fit_profile(profiled, metadata={"model": model, "version": version}), sensitive)
    x, y = validation[features], validation[TARGET]
    predicted = scoring.predict(x)
    classes = _classes(scoring, y, predicted) if task != REGRESSION else None
    proba = scoring.predict_proba(x) if classes and scoring.has_proba else None
    metrics = compute_metrics(task, y, predicted, proba, classes)
    importance = feature_importance(scoring, x, y, scoring=model_scorer(task))
    cbpe = CBPE().fit(proba, y.to_numpy(), classes).to_dict() if proba is not None else None
    return ModelReference(model, version, task, features, profile, {m.name: m for m in metrics}, classes,
                          importance, cbpe, joint_detector(profiled), proba is not None or task == REGRESSION,
                          scoring.flavor, feature_service, sensitive)


def _classes(scoring: Any, y: pd.Series, predicted: Any) -> list:
    """The classifier's classes as it names them, else every label seen in validation or predicted."""
    if scoring.classes_ is not None:
        return list(scoring.classes_)
    return [plain(c) for c in np.unique(np.concatenate([y.to_numpy(), np.asarray(predicted)]))]


def joint_detector(reference: pd.DataFrame) -> str | None:
    """PCA reconstruction drift, fitted on the reference rows (a profile keeps none); None when
    the model has too few features for a joint test."""
    from watchkeeper.multivariate import PCADriftDetector, dump_detector

    try:
        return dump_detector(PCADriftDetector().fit(reference, window_size=len(reference)))
    except ValueError:
        return None
