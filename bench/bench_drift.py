"""Drift engine benchmark: Watchkeeper vs per-column scipy, and peak memory of a streamed window.

    .venv/bin/python bench/bench_drift.py [--quick]
    .venv/bin/python bench/bench_drift.py --rates   # false-alarm and detection rates, more trials than the suite

Cases (--quick shrinks the rows by 10x for a smoke run):
  A  100,000 rows x 60 features (50 numeric, 10 categorical), reference of the same size
  B  1,000,000 rows x 100 numeric features, reference of the same size
  C  1,000,000 rows x 500 float32 columns (2 GB of values) in Parquet, streamed by evaluate_parquet
     in a child process whose peak RSS (ru_maxrss) is reported; the file is written in chunks
     (row groups of 10,000 rows, 20 MB: pyarrow decodes a row group at a time) and deleted afterwards.
The scipy baseline is what a tool without profiles does: ks_2samp per numeric column and
chi2_contingency per categorical column on the raw reference and window. Ratios come from the
same run, so machine load affects both sides alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchkeeper.drift import evaluate_drift, evaluate_parquet  # noqa: E402
from watchkeeper.profile import ReferenceProfile, fit_profile  # noqa: E402

LABELS = np.array([f"v{i:02d}" for i in range(12)])


def frame(rng: np.random.Generator, rows: int, numeric: int, categorical: int) -> pd.DataFrame:
    data = {f"x{i}": rng.normal(size=rows) for i in range(numeric)}
    data |= {f"c{i}": pd.Categorical.from_codes(rng.integers(0, len(LABELS), rows), LABELS) for i in range(categorical)}
    return pd.DataFrame(data)


def scipy_baseline(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    from scipy.stats import chi2_contingency, ks_2samp

    start = time.perf_counter()
    for name in reference.columns:
        if isinstance(reference[name].dtype, pd.CategoricalDtype):
            table = pd.concat([reference[name].value_counts(), current[name].value_counts()], axis=1).fillna(0)
            chi2_contingency(table.to_numpy().T)
        else:
            ks_2samp(reference[name].to_numpy(), current[name].to_numpy())
    return time.perf_counter() - start


def timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def in_memory_case(label: str, rows: int, numeric: int, categorical: int, workdir: Path) -> dict:
    rng = np.random.default_rng(0)
    reference, current = frame(rng, rows, numeric, categorical), frame(rng, rows, numeric, categorical)
    scipy_s = scipy_baseline(reference, current)
    profile, fit_s = timed(lambda: fit_profile(reference))
    path = workdir / f"{label}.json"
    profile.to_json(path)
    saved = ReferenceProfile.from_json(path)
    evaluate_drift(saved, current.iloc[:1_000])  # warm caches (entry points, scipy distributions)
    report, eval_s = timed(lambda: evaluate_drift(saved, current))
    return {"case": label, "shape": f"{rows:,} x {numeric + categorical}", "scipy_s": scipy_s, "fit_s": fit_s,
            "eval_s": eval_s, "eval_speedup": scipy_s / eval_s, "fit_eval_speedup": scipy_s / (fit_s + eval_s),
            "flagged": len(report.drifted_features)}


def write_parquet(path: Path, rows: int, columns: int, chunk: int = 10_000) -> None:
    """Write the wide window chunk by chunk (one 20 MB row group each), so generation fits in memory too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(columns)]
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        values = rng.standard_normal((columns, n), dtype=np.float32)
        table = pa.table(dict(zip(names, values)))
        writer = writer or pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()


def prepare(workdir: str, rows: str, columns: str) -> None:
    """Child process: profile a 50,000-row reference and write the wide window next to it."""
    columns_n = int(columns)
    rng = np.random.default_rng(2)
    reference = pd.DataFrame(rng.standard_normal((50_000, columns_n), dtype=np.float32),
                             columns=[f"f{i}" for i in range(columns_n)])
    fit_profile(reference).to_json(Path(workdir) / "wide.json")
    write_parquet(Path(workdir) / "wide.parquet", int(rows), columns_n)


def _run_child(*args: str) -> str:
    return subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout


def streamed_case(rows: int, columns: int, workdir: Path) -> dict:
    """Preparation and evaluation each in a fresh process, started while this one is still small:
    Linux carries the parent's peak RSS into a child's ru_maxrss across fork and exec."""
    _, prepare_s = timed(lambda: _run_child("--prepare", str(workdir), str(rows), str(columns)))
    try:
        measured = json.loads(_run_child("--child", str(workdir / "wide.json"), str(workdir / "wide.parquet")))
    finally:
        (workdir / "wide.parquet").unlink()
    return {"case": "C", "shape": f"{rows:,} x {columns} float32 (Parquet)", "prepare_s": prepare_s} | measured


def child(profile_path: str, parquet_path: str) -> None:
    """Runs in its own process, so its peak memory is the streamed evaluation's alone."""
    profile = ReferenceProfile.from_json(profile_path)
    report, eval_s = timed(lambda: evaluate_parquet(profile, parquet_path))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    status = Path("/proc/self/status").read_text()
    hwm_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024  # this process's own high-water mark
    print(json.dumps({"eval_s": eval_s, "peak_rss_mb": peak_mb, "vm_hwm_mb": hwm_mb, "rows": report.n_current,
                      "flagged": len(report.drifted_features)}))


def rates() -> None:
    """The suite's rate checks (tests/test_drift_rates.py, same generator and profile) with more trials."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_drift_rates import KINDS, flagged_share, window

    profile = fit_profile(window(np.random.default_rng(0), 200_000), KINDS)
    print("| windows | rows | drift | share flagged |\n|---|---|---|---|")
    for n, trials in [(500, 1_000), (5_000, 500), (50_000, 100), (500_000, 20)]:
        print(f"| {trials} | {n:,} | none (any of 20 features) | {flagged_share(profile, 100 + n, n, trials):.3f} |")
    print(f"| 20 | 500,000 | mean +0.01 sd (x) | {flagged_share(profile, 3, 500_000, 20, 'mean_0.01sd', 'x'):.3f} |")
    for drift, feature in [("mean_0.2sd", "x"), ("variance_1.5x", "x"), ("bimodal", "x"),
                           ("category_10_to_25pct", "c"), ("new_category_5pct", "c"), ("missing_1_to_20pct", "sparse")]:
        print(f"| 500 | 5,000 | {drift} ({feature}) | {flagged_share(profile, 5, 5_000, 500, drift, feature):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows, for a smoke run")
    parser.add_argument("--rates", action="store_true", help="measure false-alarm and detection rates instead")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    if args.prepare:
        return prepare(*args.prepare)
    if args.rates:
        return rates()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wide = streamed_case(1_000_000 // scale, 500, workdir)  # first, while this process is small
        rows = [in_memory_case("A", 100_000 // scale, 50, 10, workdir),
                in_memory_case("B", 1_000_000 // scale, 100, 0, workdir)]
    print("| case | shape | scipy s | fit s | eval s | scipy / eval | scipy / (fit + eval) | flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['shape']} | {r['scipy_s']:.2f} | {r['fit_s']:.2f} | {r['eval_s']:.3f} | "
              f"{r['eval_speedup']:.1f}x | {r['fit_eval_speedup']:.1f}x | {r['flagged']} |")
    print(f"\ncase C: {wide['shape']}: profiled and written in {wide['prepare_s']:.1f} s, evaluated in "
          f"{wide['eval_s']:.1f} s, peak RSS {wide['peak_rss_mb']:.0f} MB (ru_maxrss; VmHWM {wide['vm_hwm_mb']:.0f} MB), "
          f"{wide['rows']:,} rows, {wide['flagged']} flagged")


if __name__ == "__main__":
    main()
