"""`watchkeeper drift` as a whole process on raw Parquet, against per-column scipy and frouros on the same files.

    .venv/bin/python bench/bench_drift_cli.py [--rounds 3] [--quick]

frouros (the second baseline) pins numpy < 2.2 and scipy < 1.15, which would downgrade river's numpy;
install it without its pins: `.venv/bin/pip install --no-deps frouros==0.9.0` (it runs on the
project's numpy and scipy). Without it, its rows say "not installed".

Cases: 100,000 x 60 (50 numeric, 10 categorical) and 1,000,000 x 100 numeric, a reference and a
current file of the same size from one distribution, written to Parquet once. Each round runs, as
separate processes, one after another: `watchkeeper drift --reference ref.parquet --current
cur.parquet` (default: the univariate report plus the PCA detector within its time budget: 3,460
sampled rows at 100,000 x 60, whose ten 12-label columns make 170 encoded ones; 10,000 rows at
1,000,000 x 100), the same against a saved profile, a per-column scipy script (pandas.read_parquet, ks_2samp per numeric
column, chi2_contingency per categorical one) and a frouros script (pandas.read_parquet, KSTest and
ChiSquareTest per column). Wall time, peak RSS (the child's ru_maxrss) and CPU time of each process;
medians over the rounds; ratios against the fastest peer in the same run. --quick: 10x fewer rows, 1 round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
WATCHKEEPER = str(ROOT / ".venv" / "bin" / "watchkeeper")
LABELS = [f"v{i:02d}" for i in range(12)]

SCIPY = """
import sys, pandas as pd
from scipy.stats import chi2_contingency, ks_2samp
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
for name in ref.columns:
    if ref[name].dtype == object or str(ref[name].dtype) == "category":
        table = pd.concat([ref[name].value_counts(), cur[name].value_counts()], axis=1).fillna(0)
        chi2_contingency(table.to_numpy().T)
    else:
        ks_2samp(ref[name].to_numpy(), cur[name].to_numpy())
"""

FROUROS = """
import sys, pandas as pd
from frouros.detectors.data_drift import ChiSquareTest, KSTest
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
for name in ref.columns:
    categorical = ref[name].dtype == object or str(ref[name].dtype) == "category"
    detector = ChiSquareTest() if categorical else KSTest()
    detector.fit(X=ref[name].to_numpy())
    detector.compare(X=cur[name].to_numpy())
"""


def write(path: Path, rows: int, numeric: int, categorical: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(size=rows) for i in range(numeric)}
    data |= {f"c{i}": pa.array(np.array(LABELS)[rng.integers(0, len(LABELS), rows)]) for i in range(categorical)}
    pq.write_table(pa.table(data), path, row_group_size=100_000)


def peak_of(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the child's own peak RSS and its CPU seconds (user + system), from /usr/bin/time
    (RUSAGE_CHILDREN keeps the max of all). CPU seconds hardly move with the load of a shared
    machine, where wall seconds do: both are shown."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *command], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed: {done.stderr[-2000:]}")
    peak, user, system = done.stderr.strip().splitlines()[-1].split()
    return elapsed, int(peak) / 1024, float(user) + float(system)


def frouros_installed() -> bool:
    return subprocess.run([PYTHON, "-c", "import frouros"], capture_output=True).returncode == 0


def case(label: str, rows: int, numeric: int, categorical: int, rounds: int, workdir: Path) -> list[str]:
    ref, cur, profile = workdir / f"{label}_ref.parquet", workdir / f"{label}_cur.parquet", workdir / f"{label}.json"
    write(ref, rows, numeric, categorical, 1)
    write(cur, rows, numeric, categorical, 2)
    subprocess.run([WATCHKEEPER, "profile", "--data", str(ref), "--output", str(profile)], check=True, capture_output=True)
    commands = {
        "watchkeeper drift, raw Parquet (+ PCA, auto budget)": [WATCHKEEPER, "drift", "--reference", str(ref), "--current", str(cur)],
        "watchkeeper drift, saved profile": [WATCHKEEPER, "drift", "--reference", str(profile), "--current", str(cur)],
        "per-column scipy (ks_2samp, chi2_contingency)": [PYTHON, "-c", SCIPY, str(ref), str(cur)],
    }
    if frouros_installed():
        commands["frouros 0.9 (KSTest, ChiSquareTest)"] = [PYTHON, "-c", FROUROS, str(ref), str(cur)]
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():  # alternated: load changes hit every tool alike
            measured[name].append(peak_of(command))
    seconds = {n: statistics.median(s for s, _, _ in m) for n, m in measured.items()}
    memory = {n: statistics.median(mb for _, mb, _ in m) for n, m in measured.items()}
    cpu = {n: statistics.median(c for _, _, c in m) for n, m in measured.items()}
    peers = [n for n in commands if not n.startswith("watchkeeper")]
    fastest, leanest = min(peers, key=seconds.get), min(peers, key=cpu.get)
    lines = []
    for name in commands:
        ours = name.startswith("watchkeeper")
        ratio = f"{seconds[fastest] / seconds[name]:.1f}x" if ours else "-"
        cpu_ratio = f"{cpu[leanest] / cpu[name]:.1f}x" if ours else "-"
        lines.append(f"| {label} | {name} | {seconds[name]:.2f} | {memory[name]:.0f} | {ratio} | {cpu[name]:.2f} | {cpu_ratio} |")
    if not frouros_installed():
        lines.append(f"| {label} | frouros | not installed (see the docstring) | | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale, rounds = (10, 1) if args.quick else (1, args.rounds)
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.1f} (2 cores)\n")
    print("| case | process | seconds (median) | peak RSS MB | fastest peer / this | CPU s (user+sys) | "
          "least-CPU peer / this |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, rows, numeric, categorical in [("100,000 x 60", 100_000 // scale, 50, 10),
                                                   ("1,000,000 x 100", 1_000_000 // scale, 100, 0)]:
            for line in case(label, rows, numeric, categorical, rounds, Path(tmp)):
                print(line, flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
