"""When a feature, and a whole window, counts as drifted: significance AND an effect that matters.

A p-value alone answers "is there any difference?", which on a large window is always yes; an
effect size alone cannot tell a real change from the noise of a small window. So a feature drifts
only when a signal is significant after Benjamini-Hochberg across every signal of the window and
its effect clears a floor. docs/drift.md explains each default; the numbers behind them are in
docs/benchmarks.md ("Drift engine").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

from watchkeeper.drift_tests import load_test
from watchkeeper.profile import CATEGORICAL, NUMERIC

NUMERIC_EFFECTS = ("wasserstein", "psi", "jensen_shannon", "hellinger")
CATEGORICAL_EFFECTS = ("jensen_shannon", "psi", "hellinger")


@dataclass(frozen=True)
class DriftConfig:
    """Per-model drift settings; every default is chosen for a reason (see docs/drift.md).

    alpha = 0.01: false-discovery rate for Benjamini-Hochberg over all signals of a window (each
        feature's distribution test and its missing-rate test). When nothing drifts, BH at level
        alpha keeps P(any feature flagged) <= alpha, the 1% false-alarm budget per window; the
        drifts worth catching have p-values far below that at a few thousand rows.
    numeric_test = "ks", categorical_test = "chi2": the test whose p-value enters BH; any name
        registered under the "watchkeeper.drift_tests" entry point group works.
    numeric_effect = "wasserstein", numeric_floor = 0.1: Wasserstein-1 distance in reference
        standard deviations (winsorized at the reference's 0.5%/99.5% quantiles). It is scale-free,
        reads as "how far did the values move" (a 0.2-sd mean shift is 0.2, a 1.5x variance change
        0.17) and sees shape changes that keep mean and variance (unimodal to bimodal: 0.2). No-drift
        noise stays under 0.04 in 99% of 5,000-row windows, so 0.1 is above noise there and ten
        times a 0.01-sd shift; at 500 rows noise reaches 0.11 and alpha does the guarding.
    categorical_effect = "jensen_shannon", categorical_floor = 0.1: JS distance (base 2, in
        [0, 1]). A category going from 10% to 25% is 0.17, a new category at 5% is 0.16, while
        sampling noise with 10 categories at 500 rows stays under 0.09 in 99% of windows. (PSI is
        reported but not the default: the 10% -> 25% change has PSI 0.165, under the usual 0.2.)
    missing_rate_floor = 0.05: the missing rate is its own signal (two-proportion test); it drifts
        when significant and the rate moved by at least 5 points (1% -> 20% is 19 points).
    dataset_drift_share = 0.25, min_drifted_features = 2: the dataset drifts when at least
        min_drifted_features features drift, or at least dataset_drift_share of them (so a model
        with 1-4 features drifts on one). One feature alone is a feature alert; a dataset alert
        (which may start retraining) wants corroboration. min_drifted_features = 0 disables the count.
    """

    alpha: float = 0.01
    numeric_test: str = "ks"
    categorical_test: str = "chi2"
    numeric_effect: str = "wasserstein"
    numeric_floor: float = 0.1
    categorical_effect: str = "jensen_shannon"
    categorical_floor: float = 0.1
    missing_rate_floor: float = 0.05
    dataset_drift_share: float = 0.25
    min_drifted_features: int = 2

    def __post_init__(self) -> None:
        checks = [
            (0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
            (self.numeric_effect in NUMERIC_EFFECTS,
             f"numeric_effect must be one of {', '.join(NUMERIC_EFFECTS)}, got {self.numeric_effect!r}"),
            (self.categorical_effect in CATEGORICAL_EFFECTS,
             f"categorical_effect must be one of {', '.join(CATEGORICAL_EFFECTS)}, got {self.categorical_effect!r}"),
            (min(self.numeric_floor, self.categorical_floor, self.missing_rate_floor) >= 0, "floors must be >= 0"),
            (0 <= self.dataset_drift_share <= 1,
             f"dataset_drift_share must be in [0, 1], got {self.dataset_drift_share}"),
            (self.min_drifted_features >= 0, f"min_drifted_features must be >= 0, got {self.min_drifted_features}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        load_test(self.numeric_test, NUMERIC)
        load_test(self.categorical_test, CATEGORICAL)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DriftConfig:
        """Build from YAML-ish config: None values mean 'default', unknown keys are typos."""
        given = {k: v for k, v in (d or {}).items() if v is not None}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"unknown drift config keys: {', '.join(unknown)}")
        try:
            return cls(**{k: type(known[k].default)(v) for k, v in given.items()})
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid drift config: {error}") from None

    def floor(self, kind: str) -> float:
        return self.numeric_floor if kind == NUMERIC else self.categorical_floor

    def effect_metric(self, kind: str) -> str:
        return self.numeric_effect if kind == NUMERIC else self.categorical_effect

    def dataset_drift(self, n_drifted: int, n_features: int) -> bool:
        """At least min_drifted_features drifted features, or at least dataset_drift_share of them."""
        if n_drifted == 0:
            return False
        by_count = self.min_drifted_features > 0 and n_drifted >= self.min_drifted_features
        return by_count or n_drifted / n_features >= self.dataset_drift_share


@dataclass(frozen=True)
class Decision:
    """Per feature: BH-adjusted p-values of both signals, the verdict and its reason."""

    p_adjusted: np.ndarray
    missing_p_adjusted: np.ndarray
    drifted: np.ndarray
    reasons: list[str | None]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values; NaN (an untested signal) stays NaN and does not count in m."""
    adjusted = np.full(len(p_values), np.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = false_discovery_control(p_values[tested], method="bh")
    return adjusted


def decide(config: DriftConfig, p_value: np.ndarray, effect: np.ndarray, floor: np.ndarray,
           missing_p: np.ndarray, missing_change: np.ndarray) -> Decision:
    """Feature verdicts from both signals, corrected together across the window."""
    adjusted = benjamini_hochberg(np.concatenate([p_value, missing_p]))
    q, q_missing = adjusted[:len(p_value)], adjusted[len(p_value):]
    with np.errstate(invalid="ignore"):
        by_distribution = (q < config.alpha) & (effect >= floor)
        by_missing = (q_missing < config.alpha) & (np.abs(missing_change) >= config.missing_rate_floor)
    reasons = [("distribution+missing_rate" if d and m else "distribution" if d else "missing_rate" if m else None)
               for d, m in zip(by_distribution, by_missing)]
    return Decision(q, q_missing, by_distribution | by_missing, reasons)
