"""Drift evaluation: statistics against scipy, decision rule, false-alarm rate and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from watchkeeper.drift import DriftConfig, DriftInputError, evaluate_drift
from watchkeeper.profile import CATEGORICAL, MAX_CATEGORIES, NUMERIC, OTHER, fit_profile
from watchkeeper.stats import psi

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
    assert f.distances["psi"] == pytest.approx(hand)
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_bh_adjustment_over_all_signals_matches_scipy(profile):
    current = sample(np.random.default_rng(4), 800, shift=0.15)
    report = evaluate_drift(profile, current)
    raw = [f.p_value for f in report.features] + [f.missing_rate_p_value for f in report.features]
    expected = stats.false_discovery_control(raw, method="bh")
    adjusted = [f.p_adjusted for f in report.features] + [f.missing_rate_p_adjusted for f in report.features]
    assert adjusted == pytest.approx(list(expected))


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
    assert x.p_adjusted < 0.01 and x.effect_size == pytest.approx(0.5, abs=0.1)
    assert (x.effect_metric, x.reason) == ("wasserstein", "distribution")
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
    config = DriftConfig.from_dict({"alpha": "0.05", "numeric_floor": None, "categorical_effect": "psi"})
    assert (config.alpha, config.numeric_floor, config.categorical_effect) == (0.05, 0.1, "psi")
    with pytest.raises(ValueError, match="^unknown drift config keys: alfa, floor$"):
        DriftConfig.from_dict({"alfa": 0.1, "floor": 1})
    with pytest.raises(ValueError, match="alpha"):
        DriftConfig(alpha=2)
    with pytest.raises(ValueError, match="numeric_effect must be one of"):
        DriftConfig.from_dict({"numeric_effect": "kl"})
    with pytest.raises(ValueError, match="unknown drift test 'anderson'"):
        DriftConfig.from_dict({"numeric_test": "anderson"})
    with pytest.raises(ValueError, match="'chi2' is for categorical features"):
        DriftConfig(numeric_test="chi2")


def test_config_changes_the_verdict(profile):
    current = sample(np.random.default_rng(12), 1_000, shift=0.5)
    shape_decides = evaluate_drift(profile, current, DriftConfig(numeric_floor=0.6)).features[0]
    assert shape_decides.drifted and shape_decides.effect_metric == "ks"  # KS 0.2 is past its 0.04 floor
    assert evaluate_drift(profile, current, DriftConfig(numeric_floor=0.6, numeric_shape_floor=1.01)).drifted_features == []
    psi_config = DriftConfig(numeric_effect="psi", numeric_floor=0.2)
    x = evaluate_drift(profile, current, psi_config).features[0]
    assert x.effect_metric == "psi" and x.effect_size == x.distances["psi"] and x.drifted


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
    assert x.p_value is None and x.missing_rate_current == 1.0
    assert (x.drifted, x.reason) == (True, "missing_rate") and "window has no values" in x.note
    assert c.p_value is None and c.missing_rate_current == 1.0 and c.reason == "missing_rate"
    assert k.statistic == 0.0 and not k.drifted
    assert (one.statistic, one.p_value) == (0.0, 1.0)
    d = report.to_dict()
    assert d["features"][0]["statistic"] is None and d["features"][0]["p_value"] is None
    moved = evaluate_drift(fit_profile(ref, kinds), cur.assign(k=2.0)).features[1]
    assert moved.statistic == 1.0 and moved.drifted and moved.to_dict()["effect_size"] is None  # infinite sds


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


def test_every_bad_input_gives_a_result_or_one_line():
    rng = np.random.default_rng(13)
    ref = pd.DataFrame({"x": rng.normal(size=1_000), "empty": np.nan, "code": rng.integers(0, 3, 1_000),
                        "mixed": pd.Series(["a", 1, 2.0, 1] * 250, dtype=object)})
    kinds = {"x": NUMERIC, "empty": NUMERIC, "code": CATEGORICAL, "mixed": CATEGORICAL}
    profile = fit_profile(ref, kinds)
    cur = pd.DataFrame({"x": rng.normal(size=500), "empty": rng.normal(size=500), "code": rng.integers(0, 3, 500),
                        "mixed": pd.Series(["a", "1", 2, 1.0] * 125, dtype=object), "new_column": 1.0})
    report = evaluate_drift(profile, cur)
    x, empty, code, mixed = report.features
    assert report.ignored_columns == ["new_column"] and not x.drifted
    assert empty.p_value is None and "reference has no values" in empty.note
    assert (empty.drifted, empty.reason) == (True, "missing_rate")  # 100% missing -> 0% is a change
    assert sorted(code.bin_labels) == ["0", "1", "2"] and not code.drifted  # integer codes are labels
    assert mixed.bin_labels == ["1", "2", "a"] and mixed.current_share == mixed.reference_share  # 1 == "1" == 1.0
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))  # no NaN/inf leaks into JSON
    assert d["ignored_columns"] == ["new_column"]
    with pytest.raises(DriftInputError, match="^current window has duplicate columns: x$"):
        evaluate_drift(profile, pd.concat([cur, cur[["x"]]], axis=1))


def test_drift_help_and_engine_load_without_dagster_or_mlflow():
    script = ("import sys, contextlib, io\n"
              "from cli.main import main\n"
              "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
              "    main(['drift', '--help'])\n"
              "import watchkeeper.drift, watchkeeper.profile\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'mlflow'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"
