"""Drift evaluation: statistics against scipy, decision rule, false-alarm rate and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from watchkeeper.drift import DriftConfig, DriftInputError, evaluate_drift, psi
from watchkeeper.profile import CATEGORICAL, MAX_CATEGORIES, NUMERIC, OTHER, fit_profile

KINDS = {"x": NUMERIC, "y": NUMERIC, "plan": CATEGORICAL, "flag": CATEGORICAL}


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "x": rng.normal(shift, 1.0, n),
        "y": rng.exponential(2.0, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
        "flag": rng.integers(0, 2, n),
    })


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sample(np.random.default_rng(0), 100_000)


@pytest.fixture(scope="module")
def profile(reference):
    return fit_profile(reference, KINDS)


def test_ks_matches_scipy(reference, profile):
    current = sample(np.random.default_rng(1), 2_000, shift=0.1)
    f = evaluate_drift(profile, current).features[0]
    ks = stats.ks_2samp(reference["x"], current["x"])
    assert f.test == "ks" and abs(f.statistic - ks.statistic) < 0.01
    assert ks.pvalue < 0.01 and abs(np.log10(f.p_value) - np.log10(ks.pvalue)) < 1


def test_ks_with_ties_matches_scipy():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.integers(0, 30, 100_000).astype(float)})
    cur = pd.DataFrame({"x": rng.integers(2, 30, 3_000).astype(float)})
    f = evaluate_drift(fit_profile(ref, {"x": NUMERIC}), cur).features[0]
    assert abs(f.statistic - stats.ks_2samp(ref["x"], cur["x"]).statistic) < 0.01


def test_chi2_matches_scipy(reference, profile):
    current = sample(np.random.default_rng(3), 1_000)
    current.loc[:99, "plan"] = "pro"
    f = next(f for f in evaluate_drift(profile, current).features if f.name == "plan")
    labels = f.bin_labels
    table = [reference["plan"].value_counts()[labels], current["plan"].value_counts()[labels]]
    expected = stats.chi2_contingency(np.array(table))
    assert f.test == "chi2"
    assert f.statistic == pytest.approx(expected.statistic) and f.p_value == pytest.approx(expected.pvalue)


def test_psi_by_hand():
    ref = pd.DataFrame({"x": np.arange(1000.0)})  # deciles -> 10 bins of 100
    cur = pd.DataFrame({"x": np.r_[np.full(500, 10.0), np.full(500, 950.0)]})
    f = evaluate_drift(fit_profile(ref, {"x": NUMERIC}), cur).features[0]
    assert f.reference_share == pytest.approx([0.1] * 10)
    assert f.current_share == pytest.approx([0.5] + [0.0] * 8 + [0.5])
    hand = 2 * (0.5 - 0.1) * np.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert f.effect_size == pytest.approx(hand)
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_bh_adjustment_matches_scipy(profile):
    current = sample(np.random.default_rng(4), 800, shift=0.15)
    report = evaluate_drift(profile, current)
    raw = [f.p_value for f in report.features]
    expected = stats.false_discovery_control(raw, method="bh")
    assert [f.p_adjusted for f in report.features] == pytest.approx(list(expected))


@pytest.mark.parametrize("n", [500, 5_000])
def test_same_distribution_not_flagged(profile, n):
    rng = np.random.default_rng(5)
    for _ in range(50):
        report = evaluate_drift(profile, sample(rng, n))
        assert not report.drifted_features and not report.dataset_drift


def test_mean_shift_flagged(profile):
    report = evaluate_drift(profile, sample(np.random.default_rng(6), 1_000, shift=0.5))
    assert report.drifted_features == ["x"]
    x = report.features[0]
    assert x.p_adjusted < 0.05 and x.effect_size >= 0.2
    assert report.dataset_drift  # one of four features reaches the 25% share


def test_new_category_flagged(profile):
    current = sample(np.random.default_rng(7), 1_000)
    current.loc[:199, "plan"] = "enterprise"
    report = evaluate_drift(profile, current)
    plan = next(f for f in report.features if f.name == "plan")
    assert plan.drifted and "enterprise" in plan.bin_labels
    assert plan.reference_share[plan.bin_labels.index("enterprise")] == 0.0


def test_unknown_labels_fold_into_other():
    ref = pd.DataFrame({"c": [f"v{i}" for i in range(MAX_CATEGORIES + 10)] * 20})
    cur = pd.DataFrame({"c": ["v0", "brand-new"] * 50})
    f = evaluate_drift(fit_profile(ref, {"c": CATEGORICAL}), cur).features[0]
    assert "brand-new" not in f.bin_labels and f.current_share[f.bin_labels.index(OTHER)] == 0.5


def test_dataset_drift_rule():
    config = DriftConfig()
    assert not config.dataset_drift(0, 10) and not config.dataset_drift(1, 10)
    assert config.dataset_drift(2, 10) and config.dataset_drift(1, 4)
    assert not DriftConfig(min_drifted_features=0).dataset_drift(2, 10)


def test_config_from_dict():
    config = DriftConfig.from_dict({"alpha": "0.01", "psi_floor": None})
    assert (config.alpha, config.psi_floor) == (0.01, 0.2)
    with pytest.raises(ValueError, match="unknown drift config keys: alfa, floor"):
        DriftConfig.from_dict({"alfa": 0.1, "floor": 1})
    with pytest.raises(ValueError, match="alpha"):
        DriftConfig(alpha=2)


def test_bad_input(profile):
    good = sample(np.random.default_rng(8), 100)
    with pytest.raises(DriftInputError, match="^current window is missing columns: x, plan$"):
        evaluate_drift(profile, good.drop(columns=["x", "plan"]))
    with pytest.raises(DriftInputError, match="^current window is empty$"):
        evaluate_drift(profile, good.iloc[:0])
    with pytest.raises(DriftInputError, match="'y' holds non-numeric values"):
        evaluate_drift(profile, good.assign(y=["oops"] + [1.0] * 99))
    with pytest.raises(DriftInputError, match="DataFrame"):
        evaluate_drift(profile, good.to_dict())


def test_extra_columns_ignored(profile):
    report = evaluate_drift(profile, sample(np.random.default_rng(9), 100).assign(extra=1))
    assert [f.name for f in report.features] == list(KINDS)


def test_null_inf_and_constant_columns_do_not_crash():
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(size=500), "k": 1.0, "c": rng.choice(["a", "b"], 500), "one": "z"})
    kinds = {"x": NUMERIC, "k": NUMERIC, "c": CATEGORICAL, "one": CATEGORICAL}
    cur = pd.DataFrame({"x": [np.nan, np.inf, None, -np.inf] * 25, "k": 1.0, "c": None, "one": "z"})
    report = evaluate_drift(fit_profile(ref, kinds), cur)
    x, k, c, one = report.features
    assert x.p_value is None and x.missing_rate_current == 1.0 and not x.drifted
    assert c.p_value is None and c.missing_rate_current == 1.0
    assert k.statistic == 0.0 and not k.drifted
    assert (one.statistic, one.p_value) == (0.0, 1.0)
    d = report.to_dict()
    assert d["features"][0]["statistic"] is None and d["features"][0]["p_value"] is None
    assert evaluate_drift(fit_profile(ref, kinds), cur.assign(k=2.0)).features[1].statistic == 1.0


def test_to_dict_contract(profile):
    report = evaluate_drift(profile, sample(np.random.default_rng(11), 1_000, shift=1.0))
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    top = {"dataset_drift", "n_reference", "n_current", "features", "drifted_features", "share_drifted"}
    assert top <= set(d)
    keys = {"name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"}
    assert all(keys <= set(f) for f in d["features"])
    assert (d["n_reference"], d["n_current"], d["drifted_features"]) == (100_000, 1_000, ["x"])
    assert d["share_drifted"] == 0.25 and d["dataset_drift"] is True
    assert all(type(f["statistic"]) is float for f in d["features"])
