"""False-alarm and detection rates of the default decision, on the cases of tests/drift_cases.py.

The bars (issue 14): windows from the reference distribution flag any feature in at most 1% of
windows at every size from 500 to 500,000 rows; trivial shifts in at most 10%; random splits of real
data in at most 3%; every meaningful change (shape, proportions, ties and zeros, several columns,
selection bias on real data) in at least 95% of windows of 5,000 rows. The full version, with at
least 200 windows per case and size, is bench/bench_drift_rates.py; this one uses fewer windows so
that CI stays fast, and the same seeds every run.
"""

from __future__ import annotations

import numpy as np
import pytest
from drift_cases import (
    BARS,
    MEANINGFUL,
    NONE,
    SPLIT,
    TRIVIAL,
    flagged_share,
    profile_for,
    real_cases,
    synthetic,
    synthetic_cases,
    synthetic_profile,
)

from watchkeeper.drift import evaluate_drift

SYNTHETIC = {case.name: case for case in synthetic_cases()}
REAL = {(case.suite, case.name): case for name in ("breast_cancer", "diabetes") for case in real_cases(name)}


@pytest.mark.parametrize("n, windows", [(500, 200), (5_000, 100), (50_000, 10), (500_000, 2)])
def test_same_distribution_flags_at_most_1pct_of_windows(n, windows):
    case = SYNTHETIC["same distribution"]
    assert flagged_share(case, profile_for(case), n, windows, seed=n) <= BARS[NONE]


@pytest.mark.parametrize("name, n, windows", [("mean_0.05sd", 5_000, 50), ("category_10_to_11pct", 50_000, 10),
                                              ("rare_label_1_to_2pct", 5_000, 50), ("mean_0.01sd", 500_000, 2)])
def test_trivial_shifts_stay_quiet(name, n, windows):
    assert flagged_share(SYNTHETIC[name], synthetic_profile(), n, windows, seed=1) <= BARS[TRIVIAL]


def test_trivial_shift_on_a_huge_window_is_measured_and_not_flagged():
    report = evaluate_drift(synthetic_profile(), synthetic(np.random.default_rng(1), 500_000, "mean_0.01sd"))
    x = report.features[0]
    assert x.distances["wasserstein"] == pytest.approx(0.01, abs=0.01) and x.distances["ks"] < 0.01
    assert not report.drifted_features


@pytest.mark.parametrize("name", [name for name, case in SYNTHETIC.items() if case.kind == MEANINGFUL])
def test_meaningful_change_is_flagged_at_5000_rows(name):
    assert flagged_share(SYNTHETIC[name], synthetic_profile(), 5_000, 40, seed=7) >= BARS[MEANINGFUL]


@pytest.mark.parametrize("key", [key for key, case in REAL.items() if case.kind in (MEANINGFUL, SPLIT, NONE)
                                 and "strong" not in key[1]], ids=" / ".join)
def test_real_data_selection_bias_is_flagged_and_random_splits_are_not(key):
    case = REAL[key]
    if case.kind == MEANINGFUL:
        assert flagged_share(case, profile_for(case), 5_000, 40, seed=3) >= BARS[MEANINGFUL]
    else:
        assert flagged_share(case, profile_for(case), 500, 60, seed=3) <= BARS[case.kind]


def test_each_effect_says_what_decided():
    profile = synthetic_profile()
    rng = np.random.default_rng(8)
    for _ in range(5):  # two modes at +-0.8 sd, same mean and variance: Wasserstein sits on its floor
        shape = {f.name: f for f in evaluate_drift(profile, synthetic(rng, 5_000, "mixture_0.8")).features}["x"]
        assert shape.drifted and shape.distances["ks"] >= 0.04
        assert shape.effect_metric == ("wasserstein" if shape.distances["wasserstein"] >= 0.1 else "ks")
    label = {f.name: f for f in evaluate_drift(profile, synthetic(rng, 5_000, "category_10_to_15pct_amid_shifts")).features}["c"]
    assert label.drifted and label.effect_metric == "label_shift" and label.effect_size == pytest.approx(0.05, abs=0.015)
    assert label.distances["jensen_shannon"] < 0.1  # the whole-distribution distance alone would miss it
    missing = {f.name: f for f in evaluate_drift(profile, synthetic(rng, 5_000, "missing_1_to_20pct")).features}["sparse"]
    assert missing.reason == "missing_rate" and missing.missing_rate_current == pytest.approx(0.2, abs=0.02)
