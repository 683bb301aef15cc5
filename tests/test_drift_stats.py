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


def test_small_reference_gets_scipy_exact_ks():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=300)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, size=400)})
    profile = fit_profile(ref, {"x": NUMERIC})
    assert len(profile.features["x"].exact_values) == 300 <= EXACT_VALUES_MAX
    f = evaluate_drift(profile, cur).features[0]
    exact = stats.ks_2samp(ref["x"], cur["x"])
    assert (f.statistic, f.p_value, f.statistic_error) == (pytest.approx(exact.statistic), pytest.approx(exact.pvalue), 0.0)


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
