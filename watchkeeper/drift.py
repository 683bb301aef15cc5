"""Compare a current window with a reference profile, feature by feature and as a whole.

A feature drifts only when its test is significant after Benjamini-Hochberg across the window's
features *and* its PSI clears an effect-size floor: with large windows every tiny, harmless shift is
significant, and with small ones a large PSI can be noise. Both guards are needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, false_discovery_control
from scipy.stats.distributions import kstwo

from watchkeeper.profile import (
    NUMERIC,
    OTHER,
    FeatureProfile,
    ReferenceProfile,
    bin_counts,
    category_counts,
    finite_sorted,
    sketch_cdf,
)

PSI_CLIP = 1e-4  # empty bins would make PSI infinite; clipping caps one bin's contribution


class DriftInputError(ValueError):
    """The current window cannot be compared with the profile (one-line, user-facing message)."""


@dataclass(frozen=True)
class DriftConfig:
    """Decision thresholds.

    dataset_drift = n_drifted > 0 and (n_drifted / n_features >= dataset_drift_share
                                       or (min_drifted_features > 0 and n_drifted >= min_drifted_features))
    With the defaults a single drifting feature is reported on the feature, but the dataset needs
    two drifting features, or a quarter of them.
    """

    alpha: float = 0.05
    psi_floor: float = 0.2
    dataset_drift_share: float = 0.25
    min_drifted_features: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.psi_floor < 0:
            raise ValueError(f"psi_floor must be >= 0, got {self.psi_floor}")
        if not 0 <= self.dataset_drift_share <= 1:
            raise ValueError(f"dataset_drift_share must be in [0, 1], got {self.dataset_drift_share}")
        if self.min_drifted_features < 0:
            raise ValueError(f"min_drifted_features must be >= 0, got {self.min_drifted_features}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DriftConfig:
        """Build from YAML-ish config: None values mean 'default', unknown keys are typos."""
        given = {k: v for k, v in (d or {}).items() if v is not None}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"unknown drift config keys: {', '.join(unknown)}")
        return cls(**{k: type(known[k].default)(v) for k, v in given.items()})

    def dataset_drift(self, n_drifted: int, n_features: int) -> bool:
        if n_drifted == 0:
            return False
        by_count = self.min_drifted_features > 0 and n_drifted >= self.min_drifted_features
        return by_count or n_drifted / n_features >= self.dataset_drift_share


def _num(x: float | None) -> float | None:
    """Plain JSON-safe float: numpy scalars become floats, NaN/inf become None."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class FeatureDrift:
    """Test result for one feature; the shares over common bins feed the plots."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    p_adjusted: float | None
    effect_size: float | None
    effect_metric: str | None
    drifted: bool
    missing_rate_reference: float
    missing_rate_current: float
    bin_labels: list[str]
    reference_share: list[float]
    current_share: list[float]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("statistic", "p_value", "p_adjusted", "effect_size",
                    "missing_rate_reference", "missing_rate_current"):
            d[key] = _num(d[key])
        d["drifted"] = bool(self.drifted)
        d["reference_share"] = [float(x) for x in self.reference_share]
        d["current_share"] = [float(x) for x in self.current_share]
        return d


@dataclass
class DriftReport:
    dataset_drift: bool
    n_reference: int
    n_current: int
    features: list[FeatureDrift]

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": bool(self.dataset_drift),
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "features": [f.to_dict() for f in self.features],
            "drifted_features": self.drifted_features,
            "share_drifted": float(self.share_drifted),
        }


# ---------------------------------------------------------------- statistics


def psi(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """Population stability index over common bins, shares clipped at PSI_CLIP before the log."""
    r = np.clip(np.asarray(reference_share, dtype=float), PSI_CLIP, None)
    c = np.clip(np.asarray(current_share, dtype=float), PSI_CLIP, None)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_statistic(quantiles: list[float], sorted_values: np.ndarray) -> float:
    """sup |F_cur - F_ref| with F_ref the sketch CDF; checked on both sides of every current step.

    Between steps F_cur is flat and F_ref monotone, so the supremum sits at a step's limits.
    """
    y = sorted_values
    last = np.flatnonzero(np.append(y[1:] != y[:-1], True))  # last index of each run of ties
    u = y[last]
    cur_right = (last + 1) / len(y)
    cur_left = np.concatenate(([0], last[:-1] + 1)) / len(y)
    d_right = np.abs(cur_right - sketch_cdf(quantiles, u))
    d_left = np.abs(cur_left - sketch_cdf(quantiles, u, left=True))
    return float(max(d_right.max(), d_left.max()))


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    e = [f"{x:.4g}" for x in edges]
    return [f"<= {e[0]}", *(f"({a}, {b}]" for a, b in zip(e, e[1:])), f"> {e[-1]}"]


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def _numeric_drift(fp: FeatureProfile, series: pd.Series) -> FeatureDrift:
    try:
        values, missing = finite_sorted(series)
    except ValueError as exc:
        raise DriftInputError(f"{exc} (numeric in the reference profile)") from None
    edges = fp.bin_edges or []
    ref = _shares(np.asarray(fp.bin_counts or [0], dtype=float))
    cur = _shares(bin_counts(values, edges).astype(float))
    stat, p, effect = math.nan, None, None
    if fp.count and len(values):
        stat = ks_statistic(fp.quantiles, values)
        n_eff = max(1, round(fp.count * len(values) / (fp.count + len(values))))
        p, effect = float(kstwo.sf(stat, n_eff)), psi(ref, cur)
    return _feature(fp, "ks", stat, p, effect, missing / len(series), _bin_labels(edges), ref, cur)


def _categorical_drift(fp: FeatureProfile, series: pd.Series) -> FeatureDrift:
    """Chi-square homogeneity over the union of labels; with an OTHER bucket in the reference,
    labels it does not name may have been in its tail, so they are folded into OTHER."""
    counts, missing = category_counts(series)
    ref_counts = fp.categories or {}
    if OTHER in ref_counts:
        folded = {k: v for k, v in counts.items() if k in ref_counts}
        folded[OTHER] = folded.get(OTHER, 0) + sum(v for k, v in counts.items() if k not in ref_counts)
        counts = folded
    labels = [k for k in [*ref_counts, *(k for k in counts if k not in ref_counts)]
              if ref_counts.get(k, 0) or counts.get(k, 0)]
    table = np.array([[c.get(k, 0) for k in labels] for c in (ref_counts, counts)], dtype=float)
    ref, cur = _shares(table[0]), _shares(table[1])
    stat, p, effect = math.nan, None, None
    if table[0].sum() and table[1].sum():
        stat, p = (0.0, 1.0) if len(labels) < 2 else map(float, chi2_contingency(table)[:2])
        effect = psi(ref, cur)
    return _feature(fp, "chi2", stat, p, effect, missing / len(series), labels, ref, cur)


def _feature(fp: FeatureProfile, test: str, stat: float, p: float | None, effect: float | None,
             missing_rate: float, labels: list[str], ref: np.ndarray, cur: np.ndarray) -> FeatureDrift:
    return FeatureDrift(
        fp.name, fp.kind, test, stat, p, None, effect, "psi", False,
        fp.missing_rate, missing_rate, labels, ref.tolist(), cur.tolist(),
    )


# ---------------------------------------------------------------- entry point


def _check_window(profile: ReferenceProfile, current: Any) -> None:
    if not isinstance(current, pd.DataFrame):
        raise DriftInputError(f"current window must be a pandas DataFrame, got {type(current).__name__}")
    if len(current) == 0:
        raise DriftInputError("current window is empty")
    absent = [n for n in profile.features if n not in current.columns]
    if absent:
        raise DriftInputError(f"current window is missing columns: {', '.join(absent)}")
    duplicated = sorted({n for n in current.columns[current.columns.duplicated()] if n in profile.features})
    if duplicated:
        raise DriftInputError(f"current window has duplicate columns: {', '.join(duplicated)}")


def evaluate_drift(
    profile: ReferenceProfile, current: pd.DataFrame, config: DriftConfig = DriftConfig()
) -> DriftReport:
    """Test every profiled feature of ``current``; columns the profile does not know are ignored."""
    _check_window(profile, current)
    results = [
        (_numeric_drift if fp.kind == NUMERIC else _categorical_drift)(fp, current[name])
        for name, fp in profile.features.items()
    ]
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    if tested:
        adjusted = false_discovery_control([results[i].p_value for i in tested], method="bh")
        for i, q in zip(tested, adjusted):
            r = results[i]
            drifted = bool(q < config.alpha and r.effect_size >= config.psi_floor)
            results[i] = replace(r, p_adjusted=float(q), drifted=drifted)
    n_drifted = sum(r.drifted for r in results)
    return DriftReport(config.dataset_drift(n_drifted, len(results)), profile.n_rows, len(current), results)
