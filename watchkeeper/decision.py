"""When a feature, and a whole window, counts as drifted: significance AND an effect that matters.

A p-value alone answers "is there any difference?", which on a large window is always yes; an
effect size alone cannot tell a real change from the noise of a small window. So a feature drifts
only when a signal is significant after Benjamini-Hochberg across every signal of the window and
one of its effects clears its floor. Each kind has two effects, because no single distance sees
every change a user cares about: for numbers, how far the values moved (Wasserstein, in reference
sds: location and scale) and how the shape changed (the KS distance: a unimodal feature turning
bimodal with the same mean and variance); for categories, the whole distribution (Jensen-Shannon)
and any one label (its share moving by enough points and enough of itself). docs/drift.md explains
each default; the rates they give are in docs/benchmarks.md ("Drift engine").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from watchkeeper.drift_tests import load_test
from watchkeeper.profile import CATEGORICAL, NUMERIC

NUMERIC_EFFECTS = ("wasserstein", "psi", "jensen_shannon", "hellinger")
CATEGORICAL_EFFECTS = ("jensen_shannon", "psi", "hellinger")
SHAPE_EFFECT, LABEL_EFFECT = "ks", "label_shift"
# What each effect size is measured in, as a reader needs it next to the number.
EFFECT_UNITS = {"wasserstein": "reference SDs", "psi": "(unitless index)", "jensen_shannon": "(distance, 0-1)",
                "hellinger": "(distance, 0-1)", SHAPE_EFFECT: "(largest CDF gap, 0-1)",
                LABEL_EFFECT: "(share of one label, 0-1)"}


def effect_text(metric: str | None, value: float | None) -> str:
    """An effect size with its metric and unit, rounded: `wasserstein 1.16 reference SDs`.

    >>> effect_text("psi", 0.23456)
    'psi 0.235 (unitless index)'
    """
    if metric is None or value is None:
        return "no effect size"
    unit = EFFECT_UNITS.get(metric)
    return f"{metric} {value:.3g}" + (f" {unit}" if unit else "")


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
        standard deviations (winsorized at the reference's 0.5%/99.5% quantiles): how far the values
        moved. A 0.2-sd mean shift is 0.2, a 1.5x variance change 0.17; trivial shifts (0.01-0.05 sd)
        stay at 0.01-0.05.
    numeric_shape_floor = 0.04: the KS distance (largest gap between the two CDFs), which sees shape
        changes that keep mean and variance: a normal turning into two modes at +-0.8 sd with the
        same mean and variance is 0.046 (its Wasserstein, 0.1, sits on that floor), a skew flip of a
        gamma(4) 0.13, while a 0.05-sd shift is 0.02 and a 1.05x sd change 0.012. Set it above 1 to
        judge numbers by numeric_effect alone.
    categorical_effect = "jensen_shannon", categorical_floor = 0.1: JS distance (base 2, in
        [0, 1]) of the whole label distribution. A category going from 10% to 25% is 0.17, a new
        category at 5% is 0.16.
    label_change_floor = 0.025, label_ratio_floor = 0.2: one label is enough when its share moved
        by at least 2.5 points AND by at least 20% of the larger of its two shares (10% -> 15% is 5
        points and 33%; a new label at 5% is 5 points and 100%), while one label moving one point
        (10% -> 11%, 1% -> 2%) or a large label wobbling (40% -> 43%: 7%) is not. The JS distance of
        10% -> 15% is only 0.06.
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
    numeric_shape_floor: float = 0.04
    categorical_effect: str = "jensen_shannon"
    categorical_floor: float = 0.1
    label_change_floor: float = 0.025
    label_ratio_floor: float = 0.2
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
            (min(self.numeric_floor, self.numeric_shape_floor, self.categorical_floor, self.label_change_floor,
                 self.label_ratio_floor, self.missing_rate_floor) >= 0, "floors must be >= 0"),
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

    def effect_floors(self, kind: str) -> dict[str, float]:
        """The effects that can make a significant feature of this kind drift, each with its floor."""
        if kind == NUMERIC:
            return {self.numeric_effect: self.numeric_floor, SHAPE_EFFECT: self.numeric_shape_floor}
        return {self.categorical_effect: self.categorical_floor, LABEL_EFFECT: self.label_change_floor}

    def dataset_drift(self, n_drifted: int, n_features: int) -> bool:
        """At least min_drifted_features drifted features, or at least dataset_drift_share of them."""
        if n_drifted == 0:
            return False
        by_count = self.min_drifted_features > 0 and n_drifted >= self.min_drifted_features
        return by_count or n_drifted / n_features >= self.dataset_drift_share


@dataclass(frozen=True)
class Decision:
    """Per feature: BH-adjusted p-values of both signals, the deciding effect, the verdict and its reason."""

    p_adjusted: np.ndarray
    missing_p_adjusted: np.ndarray
    effect: np.ndarray  # value of the deciding effect (deciding_effect)
    effect_metric: list[str]
    effect_ratio: np.ndarray  # effect / its floor: >= 1 is large enough
    drifted: np.ndarray
    reasons: list[str | None]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (as scipy's false_discovery_control); NaN (an untested signal) stays
    NaN and does not count in m."""
    adjusted = np.full(len(p_values), np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    if tested.size:
        order = tested[np.argsort(p_values[tested], kind="stable")]
        scaled = p_values[order] * tested.size / np.arange(1, tested.size + 1)
        adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted


def deciding_effect(values: np.ndarray, floors: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Per row (feature), the effect that decides: the first one that clears its floor, or else the
    one closest to its floor. Returns its value, name and value / floor.

    ``values``, ``floors`` and ``names`` are (features, effects), the primary effect first, so a
    mean shift reads as Wasserstein whenever Wasserstein alone is enough. NaN effects are skipped;
    a row without any gets NaN (a feature whose distribution could not be tested).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(floors > 0, values / floors, np.where(values > 0, np.inf, 0.0))
    ratio = np.where(np.isnan(values), -np.inf, ratio)
    clears = ratio >= 1
    best = np.where(clears.any(axis=1), clears.argmax(axis=1), ratio.argmax(axis=1))
    rows = np.arange(len(values))
    chosen = ratio[rows, best]
    tested = chosen > -np.inf
    return (np.where(tested, values[rows, best], np.nan), [str(n) for n in names[rows, best]],
            np.where(tested, chosen, np.nan))


def decide(config: DriftConfig, p_value: np.ndarray, effects: np.ndarray, floors: np.ndarray, names: np.ndarray,
           missing_p: np.ndarray, missing_change: np.ndarray) -> Decision:
    """Feature verdicts from both signals, corrected together across the window.

    ``effects``/``floors``/``names``: (features, effects) as in deciding_effect.
    """
    adjusted = benjamini_hochberg(np.concatenate([p_value, missing_p]))
    q, q_missing = adjusted[:len(p_value)], adjusted[len(p_value):]
    effect, metric, ratio = deciding_effect(effects, floors, names)
    with np.errstate(invalid="ignore"):
        by_distribution = (q < config.alpha) & (ratio >= 1)
        by_missing = (q_missing < config.alpha) & (np.abs(missing_change) >= config.missing_rate_floor)
    reasons = [("distribution+missing_rate" if d and m else "distribution" if d else "missing_rate" if m else None)
               for d, m in zip(by_distribution, by_missing)]
    return Decision(q, q_missing, effect, metric, ratio, by_distribution | by_missing, reasons)
