"""Overhead of the audit trail on the window benchmark: one `evaluate_window` run over a fleet of
demo-sized models (bench/bench_window.py), with auditing and without, alternated in this run.

"With" is the code as it is: every verdict keeps a version with its lineage (the window's rows
hashed), and the verdict, each queued alert and the configuration digest are appended to the
hash-chained audit trail under its lock. "Without" patches the audit out in this process:
no audit entries (so no append lock), no row hashing, no configuration digest. Both keep the
verdict versions (one more row per verdict, in the same transaction).

    .venv/bin/python bench/bench_audit.py [--models 100] [--rounds 3] [--demo-dir PATH]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_window import demo_for, fleet, fleet_arguments, timed_run  # noqa: E402


@contextmanager
def without_audit():
    """The evaluation without its audit entries and row hashing (patches in this process only)."""
    from watchkeeper.store import MonitoringStore

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(MonitoringStore, "audit", lambda self, *a, **k: None))
        stack.enter_context(mock.patch("watchkeeper.monitor.frame_version", lambda frame: "empty"))
        stack.enter_context(mock.patch("monitoring_assets.evaluation.record_configuration", lambda *a, **k: None))
        yield


def main() -> None:
    os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", "bench-signing-key-" + "0" * 32)   # detector state is signed
    parser = fleet_arguments(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = demo_for(tmp, args.demo_dir)
        home = Path(tmp) / "fleet"
        fleet(demo, home, [f"model-{i:04d}" for i in range(args.models)])
        timed_run(home)   # warm-up: imports and first-run caches are not the window's cost
        audited, plain = [], []
        for _ in range(args.rounds):   # alternated, so load on the shared machine hits both alike
            audited.append(timed_run(home))
            with without_audit():
                plain.append(timed_run(home))
        from watchkeeper.store import MonitoringStore

        entries = sum(1 for _ in MonitoringStore(f"sqlite:///{home / 'monitoring.db'}").audit_entries())
    with_s, without_s = statistics.median(audited), statistics.median(plain)
    print(f"| models | with audit (s, median of {args.rounds}) | without (s) | overhead | audit entries |")
    print("|---|---|---|---|---|")
    print(f"| {args.models} | {with_s:.2f} | {without_s:.2f} | {100 * (with_s / without_s - 1):+.1f}% | {entries} |")
    print(f"runs with: {', '.join(f'{t:.2f}' for t in audited)}; without: {', '.join(f'{t:.2f}' for t in plain)}")


if __name__ == "__main__":
    main()
