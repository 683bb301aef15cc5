"""What auditing adds to one verdict, measured in isolation (bench_audit.py times whole runs, whose
noise on a shared machine can hide it): a verdict's transaction with and without its audit entry
on a SQLite store, alternated, and hashing one window's rows for its data version.

    .venv/bin/python bench/bench_audit_append.py [--verdicts 300] [--rows 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    from watchkeeper.lineage import frame_version
    from watchkeeper.store import MonitoringStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=300)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = MonitoringStore(f"sqlite:///{Path(tmp) / 'monitoring.db'}")
        plain, audited = [], []
        for i in range(args.verdicts):   # alternated, so load on the machine hits both alike
            for sink, audit in ((plain, False), (audited, True)):
                start = time.perf_counter()
                with store.transaction() as tx:
                    store.put_health(f"m{i}", "2026-11-08", "1", "ok", [], tx=tx, lineage={"data_version": "x"})
                    if audit:
                        store.audit("verdict.recorded", f"m{i}", "bench", "run", "2026-11-08", tx=tx,
                                    details={"status": "ok", "revision": 1, "lineage": {"data_version": "x"}})
                sink.append(time.perf_counter() - start)
        assert store.verify_audit()[1] is None
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(args.rows, 30)), columns=[f"f{i}" for i in range(30)])
    hashing = []
    for _ in range(50):
        start = time.perf_counter()
        frame_version(frame)
        hashing.append(time.perf_counter() - start)
    p, a = statistics.median(plain) * 1e3, statistics.median(audited) * 1e3
    print("| measurement | median |")
    print("|---|---|")
    print(f"| verdict transaction, without audit entry (SQLite, {args.verdicts} alternated) | {p:.2f} ms |")
    print(f"| verdict transaction, with its audit entry | {a:.2f} ms ({a - p:+.2f} ms) |")
    print(f"| data version of a {args.rows:,}-row x 30-column window | {statistics.median(hashing) * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
