"""Files read straight into the engine (watchkeeper.files): the same profile and report as through
pandas, Parquet and CSV alike, no pandas or scipy imported by `watchkeeper drift`, and the row sample
the multivariate detectors get."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from watchkeeper.drift import evaluate_drift
from watchkeeper.files import RowSample, evaluate_file, fit_profile_file, open_file
from watchkeeper.profile import fit_profile


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Every kind of column pandas and Arrow may disagree on."""
    x = rng.normal(shift, 1, n)
    x[:4] = [np.nan, np.inf, -np.inf, 1e150]
    counts = pd.array(rng.poisson(20, n), dtype="Int64")
    counts[5:9] = pd.NA
    return pd.DataFrame({
        "x": x, "f32": rng.gamma(2, 1, n).astype("float32"), "counts": counts,
        "code": rng.integers(0, 4, n), "flag": rng.random(n) < 0.3, "text": rng.choice(["a", "b", None], n),
        "cat": pd.Categorical(rng.choice(["lo", "hi"], n)), "half": rng.choice([0.5, 1.0, 1.5], n),
        "empty": np.full(n, np.nan), "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 3, n), "D"),
    })


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "reference.parquet"
    data = frame(np.random.default_rng(0), 3_000)
    data.to_parquet(path, row_group_size=700)
    return data, path


def test_profile_from_a_file_equals_fit_profile_on_the_frame(reference):
    data, path = reference
    from_file = fit_profile_file(open_file(path))
    from_frame = fit_profile(pd.read_parquet(path))
    assert list(from_file.features) == list(data.columns) and from_file.n_rows == from_frame.n_rows
    for name, feature in from_frame.features.items():
        assert asdict(from_file.features[name]) == asdict(feature), name


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_report_from_a_file_equals_evaluate_drift_on_the_frame(reference, tmp_path, suffix):
    data, path = reference
    profile = fit_profile(data)
    current = frame(np.random.default_rng(1), 2_000, shift=0.3).drop(columns=["when", "cat"])
    current["extra"] = 1
    window = tmp_path / f"window{suffix}"
    current.to_parquet(window, row_group_size=300) if suffix == ".parquet" else current.to_csv(window, index=False)
    profile = fit_profile(data.drop(columns=["when", "cat"]))
    read_back = pd.read_parquet(window) if suffix == ".parquet" else pd.read_csv(window)
    expected = evaluate_drift(profile, read_back).to_dict()
    got = evaluate_file(profile, open_file(window), batch_size=512).to_dict()
    for a, b in zip(got.pop("features"), expected.pop("features"), strict=True):
        assert a.keys() == b.keys() and all(a[k] == (pytest.approx(b[k]) if isinstance(b[k], (float, list)) else b[k])
                                            for k in a), a["name"]
    assert got == expected and got["ignored_columns"] == ["extra"]


@pytest.mark.parametrize("rows", [2_000, 12_000])  # with and without the exact-KS values of small windows
def test_reading_a_window_in_column_groups_gives_exactly_the_one_pass_report(reference, tmp_path, monkeypatch, rows):
    """Column groups bound memory; every group is cut into the same batches (across row groups of 300
    rows here), so each column's sums add in the same order: equal to the last bit, sample included."""
    import watchkeeper.files as files

    data, _ = reference
    profile = fit_profile(data.drop(columns=["when"]))
    window = tmp_path / "window.parquet"
    frame(np.random.default_rng(2), rows, shift=0.1).drop(columns=["when"]).to_parquet(window, row_group_size=300)

    def run(group_bytes: int) -> tuple[dict, dict]:
        monkeypatch.setattr(files, "GROUP_BYTES", group_bytes)
        sample = RowSample(rows, 700, seed=3)
        return evaluate_file(profile, open_file(window), sample=sample, batch_size=512).to_dict(), sample.columns()

    (one_pass, whole), (grouped, parts) = run(1 << 30), run(8 * 300 * 2)  # all columns / two per group
    assert grouped == one_pass and grouped["n_current"] == rows
    assert list(parts) == list(whole) and all(parts[name].equals(whole[name]) for name in whole)


def test_row_sample_is_the_same_rows_however_the_file_is_cut(reference):
    data, path = reference
    source = open_file(path)
    sample = RowSample(source.num_rows, 500, seed=3)
    for start in range(0, source.num_rows, 700):
        sample.collect(pa.Table.from_pandas(data.iloc[start:start + 700][["x", "code"]], preserve_index=False), start)
    whole = RowSample(source.num_rows, 500, seed=3)
    whole.collect(pq.read_table(path, columns=["x", "code"]))
    assert len(sample.rows) == 500 and sample.columns()["code"].to_pylist() == data["code"].iloc[sample.rows].tolist()
    assert whole.columns()["x"].equals(sample.columns()["x"])


def test_drift_on_files_imports_neither_pandas_nor_scipy(reference, tmp_path):
    """Only a nanosecond timestamp column needs pandas (its labels are pandas Timestamps): not here.
    Nor pyarrow.compute, whose import alone is a tenth of the command (columns.arrow_kernel)."""
    data, _ = reference
    path = tmp_path / "no_timestamps.parquet"
    data.drop(columns="when").to_parquet(path)
    probe = ("import sys, io, contextlib\nfrom cli.main import main\n"
             "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
             f"    main(['drift', '--reference', {str(path)!r}, '--current', {str(path)!r}])\n"
             "import json; report = json.loads(out.getvalue())\n"
             "print(json.dumps([sorted(m for m in ('pandas', 'scipy', 'sklearn', 'pyarrow.compute') if m in sys.modules),"
             " report['multivariate'][0]['method'], report['drifted_features']]))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.splitlines()[-1]) == [[], "pca_reconstruction", []], done.stderr
