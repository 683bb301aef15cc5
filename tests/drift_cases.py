"""The cases of the drift rate checks: what must stay quiet, what must be flagged, on what data.

Shared by tests/test_drift_rates.py (few windows, in CI) and bench/bench_drift_rates.py (at least 200
windows per case and size). The data are generated from their own descriptions, not from the
engine's assumptions: shape changes that keep mean and variance, ties and zero inflation, labels
moving amid other shifts, several columns moving at once, and real data sets bundled with
scikit-learn resampled with selection bias (a sub-population over-represented) or split at random.

Kinds of case:
  none        windows from the reference distribution: flag any feature in at most 1% of windows;
  trivial     changes too small to matter (0.01-0.05 sd, one label moving one point): at most 10%;
  split       a real data set split at random in two halves (reference, window): at most 3%;
  meaningful  changes a user cares about: its target features all flagged in at least 95% of
              windows of 5,000 rows and more;
  borderline  changes at the edge of the floors, reported without a bar (what the floors let pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from watchkeeper.drift import DriftConfig, evaluate_drift
from watchkeeper.profile import ReferenceProfile, fit_profile, infer_kinds

NONE, TRIVIAL, SPLIT, MEANINGFUL, BORDERLINE = "none", "trivial", "split", "meaningful", "borderline"
BARS = {NONE: 0.01, TRIVIAL: 0.10, SPLIT: 0.03, MEANINGFUL: 0.95}  # max share flagged; min for meaningful
REFERENCE_ROWS = 200_000
RESAMPLED_REFERENCE_ROWS = 50_000
LABELS = np.array([f"k{i}" for i in range(10)])
WIDE = np.array([f"w{i:02d}" for i in range(40)])
WIDE_P = 1 / np.arange(2, 42) / (1 / np.arange(2, 42)).sum()  # Zipf-like: 11% down to 0.6%


@dataclass(frozen=True)
class Case:
    """One kind of window. ``window(rng, n)`` draws it; ``reference(rng)``, when set, draws the
    reference profile that goes with each window (random splits); ``targets`` are the features a
    meaningful case must flag (all of them), other cases count a window flagged when any feature is."""

    suite: str
    name: str
    kind: str
    window: Callable[[np.random.Generator, int], pd.DataFrame]
    targets: tuple[str, ...] = ()
    reference: Callable[[np.random.Generator], tuple[ReferenceProfile, pd.DataFrame]] | None = field(default=None)

    def flagged(self, drifted: list[str]) -> bool:
        return all(t in drifted for t in self.targets) if self.targets else bool(drifted)


def flagged_share(case: Case, profile: ReferenceProfile | None, n: int, windows: int, seed: int,
                  config: DriftConfig = DriftConfig()) -> float:
    """Share of ``windows`` windows of ``n`` rows in which ``case`` counts as flagged."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(windows):
        if case.reference is not None:
            profile, current = case.reference(rng)
        else:
            current = case.window(rng, n)
        hits += case.flagged(evaluate_drift(profile, current, config).drifted_features)
    return hits / windows


# ---------------------------------------------------------------- synthetic: 24 features of every type


def mixture(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
    """Two normal modes at +-a with sd sqrt(1 - a^2): mean 0 and variance 1, like N(0, 1)."""
    return np.where(rng.random(n) < 0.5, -a, a) + rng.normal(0, np.sqrt(1 - a * a), n)


def synthetic(rng: np.random.Generator, n: int, change: str | None = None) -> pd.DataFrame:
    """x normal, g4 gamma(4) (skewed), count Poisson(3), sparse normal with 1% missing, ties normal
    rounded to integers (heavy ties), zero 60% zeros else lognormal, c 10 equal labels, wide 40
    Zipf-like labels, code integers 0-4, flag True 30%, z0..z13 normals; ``change`` alters some."""
    x = rng.normal(size=n)
    g4 = rng.gamma(4.0, 1.0, n)
    sparse = rng.normal(size=n)
    ties = np.round(rng.normal(0, 2, n))
    zero = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(0, 1, n))
    c_p, c_labels, wide_p = np.full(10, 0.1), LABELS, WIDE_P
    z0_shift, missing = 0.0, 0.01
    match change:
        case "mean_0.01sd" | "mean_0.05sd" | "mean_0.2sd":
            x += float(change.split("_")[1][:-2])
        case "variance_1.5x":
            x *= np.sqrt(1.5)
        case "mixture_0.75" | "mixture_0.8" | "mixture_0.9":
            x = mixture(rng, n, float(change.split("_")[1]))
        case "skew_flip":  # the gamma mirrored around its mean: same mean and variance, skewness -1
            g4 = 8.0 - g4
        case "category_10_to_25pct":
            c_p = np.r_[0.25, np.full(9, 0.75 / 9)]
        case "category_10_to_11pct":
            c_p = np.r_[0.11, np.full(9, 0.89 / 9)]
        case "new_category_5pct":
            c_p, c_labels = np.r_[c_p * 0.95, 0.05], np.r_[LABELS, ["brand_new"]]
        case "rare_label_1_to_2pct":  # w31 is 1.0% of rows
            wide_p = WIDE_P.copy()
            wide_p[31] += 0.01
            wide_p[:10] -= 0.001
        case "missing_1_to_20pct":
            missing = 0.20
        case "zeros_60_to_70pct":
            zero = np.where(rng.random(n) < 0.7, 0.0, rng.lognormal(0, 1, n))
        case "resolution_halved":  # the integers recorded to the nearest even number
            ties = 2 * np.round(ties / 2)
        case "category_10_to_15pct_amid_shifts" | "mixed_types":
            c_p = np.r_[0.15, np.full(9, 0.85 / 9)]
            if change == "mixed_types":
                x += 0.15
                zero = np.where(rng.random(n) < 0.68, 0.0, rng.lognormal(0, 1, n))
                missing = 0.08
            else:  # other columns move at the same time: a numeric shift, labels reshuffled
                z0_shift = 0.3
                wide_p = np.roll(WIDE_P, 1)
        case None:
            pass
        case _:
            raise ValueError(f"unknown change {change!r}")
    sparse[rng.random(n) < missing] = np.nan
    return pd.DataFrame({
        "x": x, "g4": g4, "count": rng.poisson(3, n).astype(float), "sparse": sparse, "ties": ties, "zero": zero,
        "c": c_labels[rng.choice(len(c_labels), n, p=c_p)], "wide": WIDE[rng.choice(len(WIDE), n, p=wide_p)],
        "code": rng.integers(0, 5, n), "flag": rng.random(n) < 0.3,
    } | {f"z{i}": rng.normal(size=n) + (z0_shift if i == 0 else 0.0) for i in range(14)})


SYNTHETIC_CASES = {
    NONE: {None: ()},
    TRIVIAL: {"mean_0.01sd": (), "mean_0.05sd": (), "category_10_to_11pct": (), "rare_label_1_to_2pct": ()},
    MEANINGFUL: {
        "mean_0.2sd": ("x",), "variance_1.5x": ("x",), "mixture_0.8": ("x",), "mixture_0.9": ("x",),
        "skew_flip": ("g4",), "category_10_to_25pct": ("c",), "new_category_5pct": ("c",),
        "category_10_to_15pct_amid_shifts": ("c",), "missing_1_to_20pct": ("sparse",),
        "zeros_60_to_70pct": ("zero",), "resolution_halved": ("ties",),
        "mixed_types": ("x", "c", "zero", "sparse"),
    },
    BORDERLINE: {"mixture_0.75": ("x",)},  # two modes, but no larger than a 0.07-sd shift (KS 0.031, W 0.07)
}


@cache
def synthetic_profile() -> ReferenceProfile:
    reference = synthetic(np.random.default_rng(0), REFERENCE_ROWS)
    return fit_profile(reference, infer_kinds(reference))


def synthetic_cases() -> list[Case]:
    return [Case("synthetic", change or "same distribution", kind,
                 lambda rng, n, change=change: synthetic(rng, n, change), targets)
            for kind, changes in SYNTHETIC_CASES.items() for change, targets in changes.items()]


# ---------------------------------------------------------------- real data bundled with scikit-learn


@dataclass(frozen=True)
class RealData:
    """A bundled data set: its feature columns, the feature that selects and a model's score."""

    name: str
    frame: pd.DataFrame
    selector: str
    score: np.ndarray


@cache
def real_data(name: str) -> RealData:
    """breast_cancer, diabetes, wine or digits, with a model's score fitted on the target (a logistic
    regression for a class, a linear regression for diabetes): the score a deployed model sees."""
    from sklearn import datasets
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    loaded = getattr(datasets, f"load_{name}")(as_frame=True)
    frame, target = loaded.data, loaded.target
    selector = {"breast_cancer": "mean radius", "diabetes": "bmi", "wine": "alcohol", "digits": "pixel_3_4"}[name]
    if name == "diabetes":
        score = LinearRegression().fit(frame, target).predict(frame)
    else:
        positive = (target == target.max()).astype(int)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000)).fit(frame, positive)
        score = model.predict_proba(frame)[:, 1]
    return RealData(name, frame, selector, np.asarray(score))


def resample(data: RealData, rng: np.random.Generator, n: int, by: str | None = None, ratio: float = 1.0) -> pd.DataFrame:
    """n rows drawn with replacement; with ``by``, the rows above the median of a feature or of the
    model's score are ``ratio`` times as likely: a sub-population over-represented."""
    weights = np.ones(len(data.frame))
    if by is not None:
        values = data.score if by == "score" else data.frame[data.selector].to_numpy()
        weights[values > np.median(values)] = ratio
    rows = rng.choice(len(data.frame), n, p=weights / weights.sum())
    return data.frame.iloc[rows].reset_index(drop=True)


@cache
def real_profile(name: str) -> ReferenceProfile:
    data = real_data(name)
    reference = resample(data, np.random.default_rng(0), RESAMPLED_REFERENCE_ROWS)
    return fit_profile(reference, infer_kinds(data.frame))


def random_split(data: RealData, rng: np.random.Generator) -> tuple[ReferenceProfile, pd.DataFrame]:
    """The data set in two random halves: the profile of one, the other as the window."""
    order = rng.permutation(len(data.frame))
    half = len(order) // 2
    reference = data.frame.iloc[order[:half]]
    return fit_profile(reference, infer_kinds(data.frame)), data.frame.iloc[order[half:]].reset_index(drop=True)


REAL_DATA = ("breast_cancer", "diabetes", "wine", "digits")
SLIGHT, MILD, STRONG = 1.25, 1.5, 3.0  # the over-represented half is 55.6% / 60% / 75% of the window, not 50%


def real_cases(name: str) -> list[Case]:
    data = real_data(name)
    cases = [Case(name, "resampled, no bias", NONE, lambda rng, n: resample(data, rng, n)),
             Case(name, "random split in halves", SPLIT, lambda rng, n: None,
                  reference=lambda rng: random_split(data, rng))]
    for by in ("feature", "score"):
        for label, ratio, kind in (("slight", SLIGHT, BORDERLINE), ("mild", MILD, MEANINGFUL), ("strong", STRONG, MEANINGFUL)):
            cases.append(Case(name, f"selected by {data.selector if by == 'feature' else 'model score'}, {label}",
                              kind, lambda rng, n, by=by, ratio=ratio: resample(data, rng, n, by, ratio)))
    return cases


def profile_for(case: Case) -> ReferenceProfile | None:
    """The reference profile of a case's windows (None when each window brings its own)."""
    if case.reference is not None:
        return None
    return synthetic_profile() if case.suite == "synthetic" else real_profile(case.suite)


# ---------------------------------------------------------------- the previous rate table, for comparison

LEGACY_KINDS = {"x": "numeric", "skewed": "numeric", "count": "numeric", "sparse": "numeric", "c": "categorical",
                "code": "categorical"} | {f"z{i}": "numeric" for i in range(14)}


def legacy_window(rng: np.random.Generator, n: int, drift: str | None = None) -> pd.DataFrame:
    """The generator of the rate table before issue 14 (20 features), unchanged."""
    x = rng.normal(size=n)
    if drift == "mean_0.2sd":
        x += 0.2
    elif drift == "mean_0.01sd":
        x += 0.01
    elif drift == "variance_1.5x":
        x *= np.sqrt(1.5)
    elif drift == "bimodal":  # same mean 0 and variance 1: modes at +-0.9 with sd sqrt(1 - 0.81)
        x = np.where(rng.random(n) < 0.5, -0.9, 0.9) + rng.normal(0, np.sqrt(0.19), n)
    p = np.full(10, 0.1)
    labels = LABELS
    if drift == "category_10_to_25pct":
        p = np.r_[0.25, np.full(9, 0.75 / 9)]
    elif drift == "new_category_5pct":
        p, labels = np.r_[p * 0.95, 0.05], np.r_[LABELS, ["brand_new"]]
    sparse = rng.normal(size=n)
    sparse[rng.random(n) < (0.20 if drift == "missing_1_to_20pct" else 0.01)] = np.nan
    return pd.DataFrame({
        "x": x, "skewed": rng.lognormal(size=n), "count": rng.poisson(3, n).astype(float), "sparse": sparse,
        "c": labels[rng.choice(len(labels), n, p=p)], "code": rng.integers(0, 5, n),
    } | {f"z{i}": rng.normal(size=n) for i in range(14)})


def legacy_table(config: DriftConfig = DriftConfig()) -> list[tuple[int, int, str, float]]:
    """(windows, rows, drift, share flagged) for every row of the previous table, same seeds."""
    profile = fit_profile(legacy_window(np.random.default_rng(0), 200_000), LEGACY_KINDS)

    def share(seed: int, n: int, trials: int, drift: str | None = None, feature: str | None = None) -> float:
        rng = np.random.default_rng(seed)
        hits = 0
        for _ in range(trials):
            drifted = evaluate_drift(profile, legacy_window(rng, n, drift), config).drifted_features
            hits += feature in drifted if feature else bool(drifted)
        return hits / trials

    rows = [(trials, n, "none (any of 20 features)", share(100 + n, n, trials))
            for n, trials in [(500, 1_000), (5_000, 500), (50_000, 100), (500_000, 20)]]
    rows.append((20, 500_000, "mean +0.01 sd (x)", share(3, 500_000, 20, "mean_0.01sd", "x")))
    for drift, feature in [("mean_0.2sd", "x"), ("variance_1.5x", "x"), ("bimodal", "x"),
                           ("category_10_to_25pct", "c"), ("new_category_5pct", "c"), ("missing_1_to_20pct", "sparse")]:
        rows.append((500, 5_000, f"{drift} ({feature})", share(5, 5_000, 500, drift, feature)))
    return rows
