"""evaluate_parquet streams a window in record batches into the same sketch as evaluate_drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from watchkeeper.drift import DriftInputError, evaluate_drift, evaluate_parquet
from watchkeeper.profile import CATEGORICAL, NUMERIC, SKETCH_RANK_ERROR, fit_profile
from watchkeeper.sketch import WindowSketch

KINDS = {"x": NUMERIC, "f32": NUMERIC, "n": NUMERIC, "c": CATEGORICAL}


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.02] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    return pd.DataFrame({"x": x, "f32": rng.gamma(2, 1, n).astype("float32"),
                         "n": pd.array(rng.poisson(6, n), dtype="Int64"),
                         "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]), "extra": 1})


@pytest.fixture(scope="module")
def profile():
    return fit_profile(frame(np.random.default_rng(0), 20_000), KINDS)


def test_parquet_stream_equals_in_memory(profile, tmp_path):
    current = frame(np.random.default_rng(1), 30_000, shift=0.1)
    current.loc[5:400, "n"] = pd.NA
    path = tmp_path / "window.parquet"
    current.to_parquet(path, row_group_size=7_000)
    streamed = evaluate_parquet(profile, path, batch_size=4_096).to_dict()
    in_memory = evaluate_drift(profile, current).to_dict()
    for a, b in zip(streamed.pop("features"), in_memory.pop("features"), strict=True):
        assert a.keys() == b.keys()
        assert all(a[k] == (pytest.approx(b[k], rel=1e-9) if isinstance(b[k], float) or k.endswith("_share")
                            else b[k]) for k in a)
    assert streamed == in_memory and streamed["ignored_columns"] == ["extra"]


def test_sketch_counts_and_moments_are_exact(profile):
    current = frame(np.random.default_rng(2), 10_000)
    sketch = WindowSketch(profile)
    for start in range(0, 10_000, 3_000):  # batches fold into the same state
        part = current.iloc[start:start + 3_000]
        sketch.add({name: part[name] for name in KINDS}, len(part))
    x = current["x"].to_numpy()
    finite = np.sort(x[np.isfinite(x)])
    row = sketch.grid.names.index("x")
    state = sketch.numeric
    assert (state.rows[row], state.finite[row]) == (10_000, len(finite))
    assert np.array_equal(state.cum[row], np.searchsorted(finite, sketch.grid.edges[row], side="right"))
    mean, std = state.mean_std(sketch.grid.center)
    assert (mean[row], std[row]) == (pytest.approx(finite.mean(), rel=1e-6), pytest.approx(finite.std(ddof=1), rel=1e-6))
    assert sum(sketch.categorical["c"].counts.values()) == 10_000


def test_parquet_bad_input_is_one_line(profile, tmp_path):
    good = frame(np.random.default_rng(3), 100)
    cases = {
        "missing.parquet": (good.drop(columns=["n"]), "^current window is missing columns: n$"),
        "empty.parquet": (good.iloc[:0], "^current window is empty$"),
        "text.parquet": (good.assign(x=["oops"] * 100), "^column 'x' holds non-numeric values"),
    }
    for name, (data, message) in cases.items():
        data.to_parquet(tmp_path / name)
        with pytest.raises(DriftInputError, match=message):
            evaluate_parquet(profile, tmp_path / name)
    (tmp_path / "junk.parquet").write_text("not parquet")
    for path, message in ((tmp_path / "junk.parquet", "cannot be read as Parquet"),
                          (tmp_path / "absent.parquet", "no such file$")):
        with pytest.raises(DriftInputError, match=message) as error:
            evaluate_parquet(profile, path)
        assert "\n" not in str(error.value)


def test_wide_float32_batches_stay_in_one_buffer(profile, tmp_path):
    names = [f"v{i}" for i in range(40)]
    rng = np.random.default_rng(4)
    table = pa.table({n: rng.normal(size=5_000).astype("float32") for n in names})
    pq.write_table(table, tmp_path / "wide.parquet", row_group_size=1_000)
    wide = fit_profile(table.to_pandas(), {n: NUMERIC for n in names})
    report = evaluate_parquet(wide, tmp_path / "wide.parquet", batch_size=1_000)
    assert report.n_current == 5_000 and not report.drifted_features
    assert all(f.statistic < SKETCH_RANK_ERROR and f.effect_size < 0.005 for f in report.features)  # it is the reference


def test_sketch_keeps_float64_range():
    """Finite values up to ±1.8e308 are values (in the right cells, moments in float64); NaN and ±inf
    are missing. float32 alone would turn anything past 3.4e38 into inf, i.e. into a missing value."""
    rng = np.random.default_rng(5)
    huge = np.finfo(np.float64).max
    reference = pd.DataFrame({"small": rng.normal(size=5_000), "big": rng.normal(0, 1e150, 5_000),
                              "offset": 1e140 + rng.normal(0, 1e130, 5_000)})
    profile = fit_profile(reference, {name: NUMERIC for name in reference})
    current = reference.sample(3_000, random_state=1).reset_index(drop=True)
    current.loc[:9, "small"] = [1e308, -1e308, huge, -huge, 1e39, -1e39, 3.5e38, np.inf, -np.inf, np.nan]
    current.loc[:4, "big"] = [huge, -huge, 1e308, np.inf, np.nan]
    sketch = WindowSketch(profile)
    sketch.add({name: current[name] for name in current}, len(current))
    mean, std = sketch.numeric.mean_std(sketch.grid.center)
    for row, name in enumerate(sketch.grid.names):
        x = current[name].to_numpy()
        finite = np.sort(x[np.isfinite(x)])
        assert sketch.numeric.finite[row] == len(finite)
        assert np.array_equal(sketch.numeric.cum[row], np.searchsorted(finite, sketch.grid.edges[row], side="right"))
        if name == "offset":  # values near 1e140 whose spread is 1e130: moments exact in float64
            assert (mean[row], std[row]) == (pytest.approx(finite.mean(), rel=1e-12),
                                             pytest.approx(finite.std(ddof=1), rel=1e-6))
    report = evaluate_drift(profile, current)
    small, big, offset = report.features
    assert small.missing_rate_current == pytest.approx(3 / 3_000) and big.missing_rate_current == pytest.approx(2 / 3_000)
    expected = stats.ks_2samp(reference["offset"], current["offset"]).statistic
    assert offset.statistic == pytest.approx(expected, abs=SKETCH_RANK_ERROR) and not offset.drifted
