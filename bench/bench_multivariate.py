"""False-alarm rate of the PCA drift detector: random halves of real data, and synthetic windows.

    .venv/bin/python bench/bench_multivariate.py [--splits 1000]

Issue 9 item 6: the previous detector reported p ~ 0 on two samples of one distribution. For each data
set bundled with scikit-learn (breast_cancer, diabetes, wine, digits), ``--splits`` random splits in
two halves: a detector is fitted on one half (its own seed) and scores the other. And 1,000 windows of
1,000 rows from a 20,000-row synthetic reference (correlated normals, a label, 5% missing values)
against one fitted detector. Under no drift the share flagged should be about alpha = 1% and the
p-values uniform (share below 0.05 about 5%, below 0.5 about 50%).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchkeeper.multivariate import PCADriftDetector  # noqa: E402


def row(name: str, windows: int, p: list[float], drifted: int, seconds: float) -> str:
    p = np.array(p)
    return (f"| {name} | {windows} | {drifted / windows:.4f} | {np.mean(p < 0.01):.4f} | {np.mean(p < 0.05):.3f} | "
            f"{np.mean(p < 0.5):.3f} | {seconds:.0f} |")


def real(name: str, splits: int) -> str:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).data
    rng = np.random.default_rng(0)
    started, p, drifted = time.perf_counter(), [], 0
    for seed in range(splits):
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        result = PCADriftDetector(seed=seed).fit(frame.iloc[order[:half]]).score(frame.iloc[order[half:]])
        p.append(result.p_value)
        drifted += result.drifted
    return row(f"{name}, random halves ({len(frame) // 2} rows)", splits, p, drifted, time.perf_counter() - started)


def synthetic(windows: int) -> str:
    rng = np.random.default_rng(1)
    cov = np.full((6, 6), 0.5) + 0.5 * np.eye(6)

    def frame(n: int) -> pd.DataFrame:
        x = pd.DataFrame(rng.multivariate_normal(np.zeros(6), cov, n), columns=list("abcdef"))
        x.loc[rng.random(n) < 0.05, "a"] = np.nan
        return x.assign(label=rng.choice(["u", "v", "w"], n, p=[0.6, 0.3, 0.1]))

    started = time.perf_counter()
    detector = PCADriftDetector().fit(frame(20_000))
    results = [detector.score(frame(1_000)) for _ in range(windows)]
    return row("synthetic, 1,000-row windows", windows, [r.p_value for r in results], sum(r.drifted for r in results),
               time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", type=int, default=1_000)
    args = parser.parse_args()
    print("| windows from one distribution | windows | share flagged | p < 0.01 | p < 0.05 | p < 0.5 | s |")
    print("|---|---|---|---|---|---|---|")
    print(synthetic(1_000), flush=True)
    for name in ("breast_cancer", "diabetes", "wine", "digits"):
        print(real(name, args.splits), flush=True)


if __name__ == "__main__":
    main()
