"""Where ingestion's time goes, without a broker: the batch checks and the durable commit alone.

    python bench/bench_ingest_stages.py [--events N] [--batch 5000]

The events of bench/bench_ingest.py, checked (watchkeeper.ingest.events) and committed
(watchkeeper.ingest.writer, with the live detector feed) in batches, in this process; prints
each stage's events per second. Run it beside bench_ingest.py to see which stage bounds a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import BATCH, DAY, events, setup_store  # noqa: E402


def stages(n: int, batch: int) -> dict:
    from watchkeeper.ingest.events import EventChecker, Message, ModelSchema
    from watchkeeper.ingest.live import LiveConcept
    from watchkeeper.ingest.writer import LogWriter
    from watchkeeper.reference import ModelReference
    from watchkeeper.store import MonitoringStore

    os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", "bench-signing-key-" + "0" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = MonitoringStore(setup_store(folder))
        references = {name: ModelReference.from_stored(s) for name, s in store.latest_profiles().items()}
        checker = EventChecker({name: ModelSchema.of(r) for name, r in references.items()})
        live, writer = LiveConcept(store, folder, references, None), LogWriter(folder, store, "bench")
        messages = [Message(str(i), e) for i, e in enumerate(events(n))]
        checking = committing = 0.0
        for start in range(0, n, batch):
            began = time.perf_counter()
            checked = checker.check(messages[start:start + batch])
            checked_at = time.perf_counter()
            writer.commit(checked, DAY, live)
            checking, committing = checking + checked_at - began, committing + time.perf_counter() - checked_at
    return {"events": n, "batch": batch, "check_events_per_s": round(n / checking), "commit_events_per_s": round(n / committing),
            "both_events_per_s": round(n / (checking + committing)), "load_average_1m": round(os.getloadavg()[0], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    print(json.dumps(stages(args.events, args.batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
