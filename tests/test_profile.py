"""Reference profiles: fitting, kind inference, serialisation and shard merging."""

from __future__ import annotations

import json
from functools import reduce

import numpy as np
import pandas as pd
import pytest

from watchkeeper.profile import (
    CATEGORICAL,
    EXACT_VALUES_MAX,
    MAX_CATEGORIES,
    NUMERIC,
    OTHER,
    QUANTILE_POINTS,
    SCHEMA_VERSION,
    SKETCH_RANK_ERROR,
    ReferenceProfile,
    bin_counts,
    fit_profile,
    infer_kinds,
    merge_profiles,
)

PROBS = np.linspace(0, 1, QUANTILE_POINTS)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 40_000
    x = rng.lognormal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "x": x,
        "tied": np.round(rng.normal(size=n), 1),
        "code": rng.integers(0, 5, size=n),
        "city": rng.choice([f"c{i}" for i in range(30)], size=n),
    })


KINDS = {"x": NUMERIC, "tied": NUMERIC, "code": CATEGORICAL, "city": CATEGORICAL}


def split(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    return [df.iloc[idx] for idx in np.array_split(np.arange(len(df)), k)]


def rank_error(data: np.ndarray, quantiles: list[float]) -> float:
    """Distance of each knot's probability from the rank interval of its value in the data."""
    xs = np.sort(data[np.isfinite(data)])
    q = np.asarray(quantiles)
    lo = np.searchsorted(xs, q, "left") / len(xs)
    hi = np.searchsorted(xs, q, "right") / len(xs)
    return float(np.max(np.maximum(0, np.maximum(lo - PROBS, PROBS - hi))))


def test_fit_numeric_matches_pandas(frame):
    f = fit_profile(frame, KINDS).features["x"]
    x = frame["x"].dropna()
    assert (f.count, f.missing) == (len(x), frame["x"].isna().sum())
    assert f.mean == pytest.approx(x.mean(), rel=1e-12)
    assert f.std == pytest.approx(x.std(), rel=1e-12)
    assert (f.min, f.max) == (x.min(), x.max())
    np.testing.assert_allclose(f.quantiles, np.quantile(x, PROBS))
    assert len(f.bin_edges) == 9 and sum(f.bin_counts) == f.count
    assert max(f.bin_counts) - min(f.bin_counts) <= 1  # deciles of continuous data


@pytest.mark.parametrize("n_shards", [2, 4])
def test_merged_shards_match_whole(frame, n_shards):
    shards = split(frame.sample(frac=1, random_state=1), n_shards)
    merged = reduce(merge_profiles, [fit_profile(s, KINDS) for s in shards])
    whole = fit_profile(frame, KINDS)
    assert merged.n_rows == whole.n_rows
    for name, w in whole.features.items():
        m = merged.features[name]
        assert (m.count, m.missing) == (w.count, w.missing)
        if w.kind == CATEGORICAL:
            assert m.categories == w.categories
            continue
        assert m.mean == pytest.approx(w.mean, rel=1e-12)
        assert m.std == pytest.approx(w.std, rel=1e-12)
        assert (m.min, m.max) == (w.min, w.max)
        assert sum(m.bin_counts) == m.count
        # bins keep the first shard's edges; re-binned counts stay within the sketch error
        true_counts = bin_counts(np.sort(frame[name].dropna().to_numpy()), m.bin_edges)
        assert np.abs(np.array(m.bin_counts) - true_counts).max() <= 2 * SKETCH_RANK_ERROR * m.count
    assert rank_error(frame["x"].to_numpy(), merged.features["x"].quantiles) <= SKETCH_RANK_ERROR


def test_merge_with_ties_stays_within_rank_error(frame):
    halves = split(frame, 2)
    merged = merge_profiles(*(fit_profile(h, KINDS) for h in halves))
    assert rank_error(frame["tied"].to_numpy(), merged.features["tied"].quantiles) <= SKETCH_RANK_ERROR


def test_merge_with_all_missing_shard():
    a = fit_profile(pd.DataFrame({"x": [np.nan, np.nan]}), {"x": NUMERIC})
    b = fit_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), {"x": NUMERIC})
    m = merge_profiles(a, b).features["x"]
    assert (m.count, m.missing, m.mean, m.bin_counts) == (3, 2, 2.0, b.features["x"].bin_counts)


def test_merge_rejects_kind_mismatch():
    df = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="kinds differ for: x"):
        merge_profiles(fit_profile(df, {"x": NUMERIC}), fit_profile(df, {"x": CATEGORICAL}))


def test_categories_capped_and_recapped_on_merge():
    labels = np.repeat([f"v{i:03d}" for i in range(80)], np.arange(80, 0, -1))
    df = pd.DataFrame({"c": labels})
    f = fit_profile(df, {"c": CATEGORICAL}).features["c"]
    assert len(f.categories) == MAX_CATEGORIES + 1 and sum(f.categories.values()) == len(df)
    assert f.categories[OTHER] == sum(range(1, 31)) and "v000" in f.categories
    m = merge_profiles(*(fit_profile(h, {"c": CATEGORICAL}) for h in split(df, 2))).features["c"]
    assert len(m.categories) <= MAX_CATEGORIES + 1 and sum(m.categories.values()) == len(df)


def test_json_round_trip(frame, tmp_path):
    profile = fit_profile(frame, KINDS, metadata={"model": "churn", "version": 3})
    path = tmp_path / "profile.json"
    profile.to_json(path)
    loaded = ReferenceProfile.from_json(path)
    assert loaded == profile
    assert loaded.metadata == {"model": "churn", "version": "3"}
    assert loaded.feature_names() == list(KINDS)


def test_infer_kinds_and_overrides():
    df = pd.DataFrame({
        "s": ["a", "b"] * 10, "b": [True, False] * 10, "i": list(range(5)) * 4,
        "f": np.linspace(0, 1, 20), "many_ints": range(20), "cat": pd.Categorical(["x", "y"] * 10),
    })
    assert infer_kinds(df) == {
        "s": CATEGORICAL, "b": CATEGORICAL, "i": CATEGORICAL, "f": NUMERIC,
        "many_ints": NUMERIC, "cat": CATEGORICAL,
    }
    kinds = infer_kinds(df, categorical=["many_ints"], numeric=["i"])
    assert (kinds["many_ints"], kinds["i"]) == (CATEGORICAL, NUMERIC)
    with pytest.raises(ValueError, match="unknown columns: nope"):
        infer_kinds(df, numeric=["nope"])


def test_inf_and_nan_are_missing():
    df = pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.nan, 2.0], "c": ["a", None, np.nan, "b", "a"]})
    p = fit_profile(df, {"x": NUMERIC, "c": CATEGORICAL})
    assert (p.features["x"].count, p.features["x"].missing) == (2, 3)
    assert p.features["x"].missing_rate == pytest.approx(0.6)
    assert (p.features["c"].count, p.features["c"].missing) == (3, 2)
    assert p.features["c"].categories == {"a": 2, "b": 1}


def test_numeric_categories_stringified_consistently():
    ints = fit_profile(pd.DataFrame({"c": [0, 1, 1]}), {"c": CATEGORICAL}).features["c"]
    floats = fit_profile(pd.DataFrame({"c": [0.0, 1.0, np.nan, 1.5]}), {"c": CATEGORICAL}).features["c"]
    assert ints.categories == {"1": 2, "0": 1}
    assert floats.categories == {"0": 1, "1": 1, "1.5": 1}


def test_non_numeric_values_in_numeric_column():
    with pytest.raises(ValueError, match="'x' holds non-numeric values"):
        fit_profile(pd.DataFrame({"x": ["1.0", "abc"]}), {"x": NUMERIC})


def test_constant_and_empty_columns():
    p = fit_profile(pd.DataFrame({"k": [3.0] * 50, "e": [np.nan] * 50}), {"k": NUMERIC, "e": NUMERIC})
    k, e = p.features["k"], p.features["e"]
    assert k.bin_edges == [3.0] and k.bin_counts == [50, 0] and k.std == 0.0
    assert e.count == 0 and e.quantiles is None and e.missing_rate == 1.0


def test_profile_is_small():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(20_000, 30)), columns=[f"f{i}" for i in range(30)])
    size = len(json.dumps(fit_profile(df).to_dict()))
    assert size < 30 * 10_000


def test_small_references_keep_their_values_and_merge_them():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=400)})
    halves = [fit_profile(h, {"x": NUMERIC}) for h in split(df, 2)]
    whole = fit_profile(df, {"x": NUMERIC}).features["x"]
    assert whole.exact_values == sorted(df["x"]) and len(whole.exact_values) <= EXACT_VALUES_MAX
    assert merge_profiles(*halves).features["x"].exact_values == whole.exact_values
    big = fit_profile(pd.DataFrame({"x": rng.normal(size=EXACT_VALUES_MAX + 1)}), {"x": NUMERIC})
    assert big.features["x"].exact_values is None


def test_schema_version_is_checked():
    d = fit_profile(pd.DataFrame({"x": [1.0, 2.0]}), {"x": NUMERIC}).to_dict()
    assert d["schema_version"] == SCHEMA_VERSION
    with pytest.raises(ValueError, match="newer than this Watchkeeper"):
        ReferenceProfile.from_dict(d | {"schema_version": SCHEMA_VERSION + 1})
    legacy = {k: v for k, v in d.items() if k != "schema_version"}
    assert ReferenceProfile.from_dict(legacy) == ReferenceProfile.from_dict(d)
