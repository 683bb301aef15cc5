"""Drift decision rates: how often each case is flagged, at each window size, with the default DriftConfig.

    .venv/bin/python bench/bench_drift_rates.py [--windows 200] [--quick] [--only SUITE] [--config drift.yaml]

Cases (tests/drift_cases.py): a synthetic reference of 200,000 rows x 24 features of every type,
and four real data sets bundled with scikit-learn (breast_cancer, diabetes, wine, digits) resampled
to a 50,000-row reference; plus the previous rate table's own generator ("legacy", 20 features),
so that its figures can be compared line by line. For each case and size, ``--windows`` windows
(default 200; the legacy table keeps its own counts), fixed seeds; the share of windows flagged is
checked against its bar: same distribution <= 1% at every size from 500 to 500,000 rows, trivial
shifts <= 10%, random splits of real data <= 3%, meaningful changes >= 95% at 5,000 rows and
more. --quick: 40 windows, no 500,000-row windows (a smoke run of a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

REAL_DATA = ("breast_cancer", "diabetes", "wine", "digits")
SYNTHETIC_SIZES = {"none": [500, 2_000, 5_000, 50_000, 500_000], "trivial": [500, 5_000, 50_000, 500_000],
                   "meaningful": [5_000, 50_000], "borderline": [5_000, 50_000]}
REAL_SIZES = {"none": [500, 5_000, 50_000], "meaningful": [5_000, 50_000], "borderline": [5_000, 50_000]}


def verdict(kind: str, share: float) -> str:
    from drift_cases import BARS, MEANINGFUL

    if kind not in BARS:
        return "-"
    ok = share >= BARS[kind] if kind == MEANINGFUL else share <= BARS[kind]
    return "PASS" if ok else "FAIL"


def run(cases, sizes: dict[str, list[int]], windows: int, config, quick: bool) -> list[str]:
    from drift_cases import BARS, MEANINGFUL, SPLIT, flagged_share, profile_for, real_data

    failures = []
    for case in cases:
        profile = profile_for(case)
        for n in [None] if case.kind == SPLIT else sizes.get(case.kind, []):
            if quick and n is not None and n > 50_000:
                continue
            started = time.perf_counter()
            seed = zlib.crc32(f"{case.suite}/{case.name}/{n}".encode())
            share = flagged_share(case, profile, n or 0, windows, seed, config)
            size = f"{n:,}" if n is not None else f"{len(real_data(case.suite).frame) // 2:,} vs the rest"
            bar = "-" if case.kind not in BARS else (">= " if case.kind == MEANINGFUL else "<= ") + f"{BARS[case.kind]:.0%}"
            result = verdict(case.kind, share)
            print(f"| {case.suite} | {case.name} | {case.kind} | {size} | {windows} | {share:.3f} | {bar} | {result} |"
                  f" {time.perf_counter() - started:.0f} |", flush=True)
            if result == "FAIL":
                failures.append(f"{case.suite}: {case.name} at {size}")
    return failures


def legacy(config) -> None:
    """The previous rate table (docs/benchmarks.md before issue 14): same generator, counts, seeds."""
    from drift_cases import legacy_table

    print("\n### The previous rate table, same generator and windows\n")
    print("| windows | rows | drift | share flagged |\n|---|---|---|---|")
    for trials, n, drift, share in legacy_table(config):
        print(f"| {trials} | {n:,} | {drift} | {share:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="40 windows, no 500,000-row windows")
    parser.add_argument("--only", choices=["synthetic", *REAL_DATA, "legacy"], help="one suite only")
    parser.add_argument("--config", type=Path, help="drift config YAML (keys of DriftConfig)")
    parser.add_argument("--engine", type=Path, help="another checkout whose watchkeeper/ to measure (before/after)")
    args = parser.parse_args()
    if args.engine:
        sys.path.insert(0, str(args.engine.resolve()))
    from drift_cases import real_cases, synthetic_cases

    from watchkeeper.decision import DriftConfig

    config = DriftConfig()
    if args.config:
        import yaml

        config = DriftConfig.from_dict(yaml.safe_load(args.config.read_text()))
    windows = 40 if args.quick else args.windows
    started = time.perf_counter()
    print("| suite | case | kind | rows | windows | share flagged | bar | | s |\n|---|---|---|---|---|---|---|---|---|")
    failures = []
    if args.only in (None, "synthetic"):
        failures += run(synthetic_cases(), SYNTHETIC_SIZES, windows, config, args.quick)
    for name in REAL_DATA:
        if args.only in (None, name):
            failures += run(real_cases(name), REAL_SIZES, windows, config, args.quick)
    if args.only in (None, "legacy"):
        legacy(config)
    print(f"\n{'all bars met' if not failures else 'FAILED: ' + '; '.join(failures)} "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
