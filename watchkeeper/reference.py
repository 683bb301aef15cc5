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

import pandas as pd

from watchkeeper.performance import BINARY, MULTICLASS, PRIMARY_METRIC, REGRESSION, MetricValue, compute_metrics
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
    sensitive: SensitiveColumns = SensitiveColumns()   # masked before profiling, and in every window

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.task]

    @property
    def is_classifier(self) -> bool:
        return self.task != REGRESSION

    def proba_columns(self) -> list[str]:
        return [f"proba_{c}" for c in self.classes or []]

    def to_stored(self) -> tuple[dict, dict]:
        """(profile, reference) as the store keeps them (StoredProfile.profile / .reference)."""
        return self.profile.to_dict(), {
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()}, "classes": self.classes,
            "features": self.features, "importance": self.importance, "cbpe": self.cbpe,
            "pca_detector": self.joint_detector,
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
                data.get("cbpe"), data.get("pca_detector"), _sensitive(data.get("sensitive")))
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
                    estimator: Any, sensitive: SensitiveColumns = SensitiveColumns()) -> ModelReference:
    """Profile the training rows and measure the estimator on the validation rows.

    Sensitive columns are masked before anything is profiled or fitted on the training rows; the
    estimator is measured on the validation rows as they are (the model saw raw values), and only
    aggregates of that (metrics, importance, calibration) are kept."""
    from watchkeeper.estimation import CBPE
    from watchkeeper.root_cause import feature_importance

    features = [c for c in train.columns if c != TARGET]
    profiled = sensitive.mask(train[features])
    profile = forget_exact_values(fit_profile(profiled, metadata={"model": model, "version": version}), sensitive)
    x, y = validation[features], validation[TARGET]
    classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_] if task != REGRESSION else None
    proba = estimator.predict_proba(x) if classes else None
    metrics = compute_metrics(task, y, estimator.predict(x), proba, classes)
    importance = feature_importance(estimator, x, y, scoring="accuracy" if classes else "neg_mean_absolute_error")
    cbpe = CBPE().fit(proba, y.to_numpy(), classes).to_dict() if classes else None
    return ModelReference(model, version, task, features, profile, {m.name: m for m in metrics}, classes,
                          importance, cbpe, joint_detector(profiled), sensitive)


def joint_detector(reference: pd.DataFrame) -> str | None:
    """PCA reconstruction drift, fitted on the reference rows (a profile keeps none); None when
    the model has too few features for a joint test."""
    from watchkeeper.multivariate import PCADriftDetector, dump_detector

    try:
        return dump_detector(PCADriftDetector().fit(reference, window_size=len(reference)))
    except ValueError:
        return None
