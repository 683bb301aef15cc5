"""Each drift statistic against scipy or its published formula, on the sketch path and the exact one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from watchkeeper.drift import evaluate_drift
from watchkeeper.profile import CATEGORICAL, EXACT_VALUES_MAX, NUMERIC, SKETCH_RANK_ERROR, fit_profile
from watchkeeper.stats import (
    chi2_homogeneity,
    hellinger,
    jensen_shannon,
    ks_pvalue,
    psi,
    shares,
    two_proportions,
)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=50_000), "y": rng.lognormal(size=50_000),
                         "n": rng.poisson(4, size=50_000).astype(float)})


@pytest.fixture(scope="module")
def profile(reference):
    return fit_profile(reference, {"x": NUMERIC, "y": NUMERIC, "n": NUMERIC})


def test_distances_match_scipy_and_formulas():
    rng = np.random.default_rng(1)
    p, q = shares(rng.random((5, 7))), shares(rng.random((5, 7)))
    q[0, 3] = 0.0
    q = shares(q)
    assert jensen_shannon(p, q) == pytest.approx([jensenshannon(a, b, base=2) for a, b in zip(p, q)])
    by_definition = np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=1) / 2)  # Hellinger (1909)
    assert hellinger(p, q) == pytest.approx(by_definition)
    assert psi(p, q) == pytest.approx([np.sum((np.clip(b, 1e-4, None) - a) * np.log(np.clip(b, 1e-4, None) / a))
                                       for a, b in zip(p, q)])
    assert jensen_shannon(p, p) == pytest.approx(0.0) and hellinger(p, p) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("column, shift", [("x", 0.05), ("y", 0.1), ("n", 0.3)])
def test_sketch_ks_within_its_stated_error(reference, profile, column, shift):
    rng = np.random.default_rng(2)
    current = reference.sample(20_000, random_state=3).reset_index(drop=True) + rng.normal(0, 0.01, (20_000, 3))
    current[column] += shift
    f = next(f for f in evaluate_drift(profile, current).features if f.name == column)
    exact = stats.ks_2samp(reference[column], current[column])
    assert f.statistic_error <= 2 * SKETCH_RANK_ERROR
    assert f.statistic - SKETCH_RANK_ERROR <= exact.statistic <= f.statistic + f.statistic_error
    assert ks_pvalue(np.array([exact.statistic]), 50_000, 20_000)[0] == pytest.approx(exact.pvalue, rel=0.05)


def test_ks_pvalue_beyond_kstwo_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=60_000), rng.normal(0.01, 1, size=60_000)
    exact = stats.ks_2samp(a, b, method="asymp")
    assert ks_pvalue(np.array([exact.statistic]), 60_000, 60_000)[0] == pytest.approx(exact.pvalue, rel=0.01)


def test_small_reference_gets_the_exact_ks_statistic_and_a_conservative_p_value():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=300)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, size=400)})
    profile = fit_profile(ref, {"x": NUMERIC})
    assert len(profile.features["x"].exact_values) == 300 <= EXACT_VALUES_MAX
    f = evaluate_drift(profile, cur).features[0]
    exact = stats.ks_2samp(ref["x"], cur["x"])  # method="exact" at these sizes
    assert (f.statistic, f.statistic_error, f.distances["ks"]) == (pytest.approx(exact.statistic), 0.0,
                                                                   pytest.approx(exact.statistic))
    assert exact.pvalue <= f.p_value <= 1.1 * exact.pvalue


@pytest.mark.parametrize("n, m", [(100, 100), (500, 500), (300, 700), (500, 2_000), (200, 10_000)])
def test_ks_pvalue_of_small_samples_is_at_or_just_above_the_exact_one(n, m):
    """The half-lattice-step correction keeps the asymptotic p-value from undercutting scipy's exact
    two-sample p-value where decisions are made (p from 1e-6 to 0.1)."""
    grid_n, grid_m = (np.arange(n) + 0.5) / n, (np.arange(m) + 0.5) / m
    checked = 0
    for shift in np.linspace(0.05, 0.4, 36):
        exact = stats.ks_2samp(grid_n, grid_m + shift, method="exact")
        if 1e-6 <= exact.pvalue <= 0.1:
            assert 0.99 * exact.pvalue <= ks_pvalue(np.array([exact.statistic]), n, m)[0] <= 1.1 * exact.pvalue
            checked += 1
    assert checked >= 3


def test_wasserstein_in_reference_sds_matches_scipy(reference, profile):
    rng = np.random.default_rng(6)
    current = pd.DataFrame({"x": rng.normal(0.3, 1.2, 20_000), "y": rng.lognormal(0.2, 1, 20_000),
                            "n": rng.poisson(5, 20_000).astype(float)})
    for f in evaluate_drift(profile, current).features:
        lo, hi = np.quantile(reference[f.name], [0.005, 0.995])  # the effect is winsorized there
        expected = stats.wasserstein_distance(reference[f.name].clip(lo, hi), current[f.name].clip(lo, hi))
        assert f.distances["wasserstein"] == pytest.approx(expected / reference[f.name].std(), rel=0.05)
        assert f.effect_metric == "wasserstein" and f.effect_size == f.distances["wasserstein"]


def test_chi2_matches_scipy_with_unseen_and_vanished_categories():
    ref = np.array([[500.0, 300.0, 200.0, 0.0]])  # the last label is new in the window
    cur = np.array([[260.0, 0.0, 140.0, 100.0]])  # the second one vanished
    statistic, p = chi2_homogeneity(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]))
    assert (statistic[0], p[0]) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    two = stats.chi2_contingency([[90, 10], [70, 30]])  # 2 x 2: Yates, like scipy
    assert chi2_homogeneity(np.array([[90.0, 10.0]]), np.array([[70.0, 30.0]]))[1][0] == pytest.approx(two.pvalue)


def test_chi2_pools_sparse_cells_and_handles_degenerate_tables():
    ref = np.array([[1000.0, 995.0, 3.0, 2.0]])
    cur = np.array([[50.0, 50.0, 0.0, 1.0]])
    pooled = np.array([[1000.0, 995.0, 5.0]]), np.array([[50.0, 50.0, 1.0]])
    assert chi2_homogeneity(ref, cur)[0] == pytest.approx(stats.chi2_contingency(np.vstack(pooled)).statistic)
    statistic, p = chi2_homogeneity(np.array([[10.0, 0.0], [0.0, 0.0]]), np.array([[5.0, 0.0], [3.0, 0.0]]))
    assert list(statistic) == [0.0, 0.0] and list(p) == [1.0, 1.0]


def test_missing_rate_test_matches_scipy():
    p = two_proportions(np.array([10.0, 0.0]), np.array([1000.0, 500.0]), np.array([40.0, 0.0]), np.array([800.0, 90.0]))
    expected = stats.chi2_contingency([[10, 990], [40, 760]]).pvalue
    assert p == pytest.approx([expected, 1.0])


def test_categorical_report_carries_every_distance():
    ref = pd.DataFrame({"c": ["a"] * 600 + ["b"] * 400})
    cur = pd.DataFrame({"c": ["a"] * 300 + ["b"] * 500 + ["new"] * 200})
    f = evaluate_drift(fit_profile(ref, {"c": CATEGORICAL}), cur).features[0]
    p, q = np.array([0.6, 0.4, 0.0]), np.array([0.3, 0.5, 0.2])
    assert f.bin_labels == ["a", "b", "new"]
    assert f.distances["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2))
    assert f.distances["hellinger"] == pytest.approx(hellinger(p, q))
    assert f.distances["psi"] == pytest.approx(psi(p, q))
    assert f.drifted and f.effect_metric == "jensen_shannon"


def test_tail_functions_match_scipy():
    """watchkeeper.special replaces scipy.stats in the engine (import time): same numbers."""
    from scipy import special

    from watchkeeper.special import chi2_sf, ks_sf, normal_sf, smirnov_sf

    rng = np.random.default_rng(7)
    x, dof = rng.exponential(30, 3_000), rng.integers(1, 150, 3_000)
    expected = stats.chi2.sf(x, dof)
    tested = expected > 1e-300
    assert chi2_sf(x, dof)[tested] == pytest.approx(expected[tested], rel=1e-9)
    assert chi2_sf(np.array([0.0, 1e6]), np.array([3, 3])).tolist() == [1.0, 0.0]
    n, d = rng.integers(1, 2_001, 3_000), rng.uniform(0, 0.4, 3_000)
    assert smirnov_sf(n, d) == pytest.approx(special.smirnov(n, d), rel=1e-9, abs=1e-300)
    n = rng.integers(2_001, 20_000, 20)  # scipy's exact smirnov takes ~0.1 s a point here
    d = np.sqrt(-np.log(rng.uniform(1e-3, 0.5, 20)) / (2 * n))
    assert smirnov_sf(n, d) == pytest.approx(special.smirnov(n, d), rel=2e-3)
    n, d = rng.integers(5, 2_001, 100), rng.uniform(0, 0.3, 100)
    expected = stats.kstwo.sf(d, n)  # slow in scipy: 100 points
    tails = (expected < 0.2) & (expected > 1e-12)
    assert ks_sf(n, d)[tails] == pytest.approx(expected[tails], rel=1e-3)
    assert (ks_sf(n, d) >= expected * (1 - 1e-5))[expected > 1e-12].all()  # not below the two-sided tail
    z = np.array([-1.0, 0.0, 1.96, 6.0])
    assert normal_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12)


def test_benjamini_hochberg_matches_scipy_and_skips_untested_signals():
    from watchkeeper.decision import benjamini_hochberg

    p = np.random.default_rng(8).random(40) ** 3
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"))
    with_gaps = np.r_[p[:5], np.nan, p[5:10]]
    adjusted = benjamini_hochberg(with_gaps)
    assert np.isnan(adjusted[5]) and np.delete(adjusted, 5) == pytest.approx(stats.false_discovery_control(p[:10]))


def test_label_shift_needs_enough_points_and_enough_of_itself():
    from watchkeeper.stats import label_shift

    reference = np.array([[0.10, 0.40, 0.01, 0.49]] * 4)
    current = np.array([[0.15, 0.35, 0.01, 0.49],   # 10% -> 15%: 5 points, 33% of 15%
                        [0.11, 0.39, 0.01, 0.49],   # one point: too few points
                        [0.10, 0.43, 0.01, 0.46],   # 40% -> 43%: 3 points but 7% of itself
                        [0.10, 0.40, 0.02, 0.48]])  # 1% -> 2%: 100% of itself but 1 point
    assert label_shift(reference, current, 0.2) == pytest.approx([0.05, 0.0, 0.0, 0.01])
    assert label_shift(np.array([[0.5, 0.5, 0.0]]), np.array([[0.45, 0.45, 0.1]]), 0.2) == pytest.approx([0.1])


def test_the_deciding_effect_is_the_first_past_its_floor_else_the_closest():
    from watchkeeper.decision import deciding_effect

    values = np.array([[0.5, 0.2], [0.05, 0.046], [0.05, 0.01], [np.nan, np.nan], [np.inf, 1.0]])
    floors = np.array([[0.1, 0.04]] * 5)
    names = np.array([["wasserstein", "ks"]] * 5, dtype=object)
    effect, metric, ratio = deciding_effect(values, floors, names)
    assert metric == ["wasserstein", "ks", "wasserstein", "wasserstein", "wasserstein"]
    assert effect[:3] == pytest.approx([0.5, 0.046, 0.05]) and ratio[:3] == pytest.approx([5.0, 1.15, 0.5])
    assert np.isnan(effect[3]) and np.isnan(ratio[3]) and ratio[4] == np.inf
