"""What checking a saved profile on load costs (watchkeeper/profile_schema.py).

    .venv/bin/python bench/bench_profile_load.py

A window evaluation decodes each model's profile once. The baseline, measured in the same run, is
building the same profile without any check (FeatureProfile(**feature) per feature, what loading
did before the schema); the ratio and the cost per feature are printed. Two shapes: a reference of
2,000 rows (quantiles and bins only) and one of 400 rows (which also keeps its 400 sorted values per
feature, EXACT_VALUES_MAX), each with 200 numeric and 20 categorical features.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchkeeper.profile import FeatureProfile, ReferenceProfile, fit_profile  # noqa: E402

REPEATS = 30


def best_ms(load, saved: dict) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        load(saved)
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def unchecked(saved: dict) -> ReferenceProfile:
    features = [FeatureProfile(**f) for f in saved["features"]]
    return ReferenceProfile({f.name: f for f in features}, saved["n_rows"], dict(saved["metadata"]))


def main() -> None:
    rng = np.random.default_rng(0)
    for rows in (2000, 400):
        frame = pd.DataFrame(rng.normal(size=(rows, 200)), columns=[f"x{i}" for i in range(200)])
        frame = frame.assign(**{f"c{i}": rng.choice(list("abcdefgh"), size=rows) for i in range(20)})
        saved = fit_profile(frame).to_dict()
        baseline, checked = best_ms(unchecked, saved), best_ms(ReferenceProfile.from_dict, saved)
        print(f"{rows} rows x 220 features: checked load {checked:.1f} ms ({checked / 220 * 1000:.0f} us per "
              f"feature), unchecked {baseline:.2f} ms, ratio {checked / baseline:.0f}x")


if __name__ == "__main__":
    main()
