"""The window benchmark against the previous release, alternated in one run.

Issue 9 asked that one evaluation loop (one read and decode per window, isolation per model,
the verdict's transaction) make the window no slower than the release before it. This runs
`bench/bench_window.py` of a checkout of that release and of this tree, alternately, each on
its own demo, and prints the batched run's seconds (median) and their ratio. This tree's figure
is its default configuration (encryption at rest on).

    git worktree add /tmp/release b22109d
    .venv/bin/python bench/bench_window_release.py --release /tmp/release [--models 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def batched_seconds(checkout: Path, models: int, demo: Path) -> float:
    """One bench run of `checkout` (its own code on sys.path first); the batched run's seconds."""
    out = subprocess.run([sys.executable, "bench/bench_window.py", "--models", str(models), "--baseline-runs", "1",
                          "--demo-dir", str(demo)], cwd=checkout, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(checkout)}).stdout
    first_row = next(line for line in out.splitlines() if line.startswith(f"| {models} |"))
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    # the release prints | models | batched | ... ; this tree | models | encryption off | encryption on | ...
    return float(cells[2] if "encryption" in out else cells[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, required=True, help="a checkout of the previous release")
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/watchkeeper-window-release"))
    args = parser.parse_args()
    times: dict[str, list[float]] = {"release": [], "this tree": []}
    for _ in range(args.rounds):
        for name, checkout in (("release", args.release), ("this tree", ROOT)):
            times[name].append(batched_seconds(checkout, args.models, args.work / name.replace(" ", "-")))
    release, current = statistics.median(times["release"]), statistics.median(times["this tree"])
    print(f"| models | release (s) | this tree (s) | this tree / release | load |")
    print("|---|---|---|---|---|")
    print(f"| {args.models} | {release:.2f} | {current:.2f} | {current / release:.2f} | "
          f"{os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
