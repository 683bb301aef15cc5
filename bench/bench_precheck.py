"""Data quality of one fleet window: the pre-check's cheap path against the full GX suite, same run.

    .venv/bin/python bench/bench_precheck.py [--repeats 20]

One model of bench/fleet.py (20 numeric features, 5,000 rows): the median time of
`validate_window` on a healthy window (the pre-check clears it), of the same with the
pre-check refusing to clear (the full suite runs: a planted out-of-range share), and of the
suite alone, each after a warm-up, alternated so the machine's load hits them alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet import _family, _window  # noqa: E402


def main() -> None:
    from watchkeeper.precheck import validate_window
    from watchkeeper.profile import ReferenceProfile
    from watchkeeper.quality import QualitySuite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    family = _family(0)
    profile = ReferenceProfile.from_dict(family.profile)
    healthy, _ = _window("fleet-00000", family, drifted=False)
    flagged = healthy.copy()
    flagged.loc[:99, "f05"] = 1e9   # 2% out of range: a warning, so GX runs and reports it
    cases = {"pre-check, cleared": lambda: validate_window(profile, healthy, "m@d", audit_share=0.0),
             "pre-check, flagged -> GX": lambda: validate_window(profile, flagged, "m@d", audit_share=0.0),
             "GX alone": lambda: QualitySuite().fit(profile).validate(healthy)}
    times = {name: [] for name in cases}
    for run in cases.values():
        run()
    for _ in range(args.repeats):
        for name, run in cases.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    baseline = statistics.median(times["GX alone"])
    print("| path | median (ms) | vs GX alone |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {1000 * median:.1f} | {median / baseline:.3g}x |")


if __name__ == "__main__":
    main()
