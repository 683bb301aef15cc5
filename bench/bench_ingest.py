"""Stream ingestion under kills: N events through `watchkeeper ingest`, against a bare consumer.

    python bench/bench_ingest.py --broker nats|redis --events N [--format json|text]

1. Publishes N prediction events of one binary model (five features) to a fresh stream.
2. The bare consumer: the same client in a group of its own, fetching batches of the same size
   and only acknowledging them: what the client and broker alone allow on this machine now (NATS:
   our adapter, nats-py's pull fetch; Redis: redis-py's own `xreadgroup` and `xack`, since our
   adapter reads XREADGROUP's reply raw, which no plain consumer of the client does). It reads
   half the events before the ingest and half after (a second group), so that a load that changes
   during the run weighs on both loops alike; `bare_events_per_s` is over both halves. For Redis,
   `bare_adapter_events_per_s` is our adapter's raw read and ack alone (half the events, after).
3. `watchkeeper ingest` in its own group over the same stream, SIGKILLed when a third and two
   thirds of the events are stored, restarted each time, the last run stopping after 2 s idle.
   `events_per_s` is the events stored over the time the consumers were consuming (from each
   run's "consuming" line to its kill or its last batch): process start-up is not counted.
4. Reads the inference log back: `stored` (unique prediction ids), `duplicates` (rows beyond
   one per id), `lost` (published ids not in the log).

The broker, the producer and the consumer share the machine's cores; run it on a quiet machine
or say how loaded it was (the JSON includes the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from stream_producers import prediction, producer  # noqa: E402

MODEL, DAY = "bench", "2026-12-03"
FEATURES = ["f0", "f1", "f2", "f3", "plan"]
BATCH = 20_000
IDLE_EXIT = 2.0
KILL_AT = (1 / 3, 2 / 3)


def setup_store(folder: Path) -> str:
    """A monitoring store holding the bench model's reference (profile only)."""
    import numpy as np
    import pandas as pd

    from watchkeeper.profile import fit_profile
    from watchkeeper.reference import ModelReference
    from watchkeeper.store import MonitoringStore

    rng = np.random.default_rng(0)
    data = pd.DataFrame({f: rng.normal(size=2000) for f in FEATURES[:-1]} | {"plan": rng.choice(["a", "b", "c"], 2000)})
    url = f"sqlite:///{folder / 'monitoring.db'}"
    reference = ModelReference(MODEL, "1", "binary", FEATURES, fit_profile(data), {}, [0, 1])
    MonitoringStore(url).put_profile(MODEL, "1", "binary", *reference.to_stored())
    return url


def events(n: int):
    """N distinct, valid prediction events (values vary so that columns are not constant)."""
    for i in range(n):
        features = {"f0": (i % 97) / 10, "f1": (i % 89) / 7, "f2": (i % 83) / 3, "f3": float(i % 7), "plan": "abc"[i % 3]}
        yield prediction(MODEL, f"e{i:09d}", f"{DAY}T{(i // 60_000) % 24:02d}:{(i // 1000) % 60:02d}:00Z", i % 2, features)


def bare_rate(source_url: str, n: int, adapter: bool = False) -> float:
    """Events per second of a consumer of the same client that only acknowledges: for NATS our
    adapter (nats-py's pull `fetch` and `ack`); for Redis redis-py's own `xreadgroup` and `xack`,
    as a user of the client writes them (unless `adapter`: then our adapter, whose read skips
    redis-py's per-entry reply parsing, as the ingest's does)."""
    from watchkeeper.ingest import open_source

    source = open_source(source_url, consumer="bare")
    fetch, ack = source.fetch, source.ack
    if source_url.startswith("redis") and not adapter:
        import redis

        from watchkeeper.ingest.sources.redis_stream import READ_BYTES

        client = redis.Redis.from_url(source_url.split("?")[0], socket_read_size=READ_BYTES)   # the group: made above

        def fetch(count: int, timeout: float) -> list:
            found = client.xreadgroup(source.group, "bare", {source.stream: ">"}, count=count, block=int(timeout * 1000))
            return [entry_id for _, entries in found for entry_id, _ in entries]

        def ack(ids: list) -> None:
            if ids:
                client.xack(source.stream, source.group, *ids)
    seen, started = 0, None
    try:
        while seen < n:
            messages = fetch(BATCH, 1.0)
            if messages and started is None:
                started = time.monotonic()
            ack(messages)
            seen += len(messages)
    finally:
        source.close()
    return seen / (time.monotonic() - started)


def stored_count(engine) -> int:
    """Events stored so far (polled while a consumer runs: one light query on one engine)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT coalesce(sum(rows), 0) FROM ingest_parts")).scalar())


def run_consumer(source_url: str, folder: Path, url: str, until: int | None) -> tuple[float, dict | None]:
    """One `watchkeeper ingest`; killed (SIGKILL) once `until` events are stored, else left to
    finish. Returns its consuming time and, for a run that finished, its summary."""
    command = [sys.executable, "-m", "cli.main", "ingest", "--source", source_url, "--dir", str(folder),
               "--store-url", url, "--consumer", "bench", "--batch", str(BATCH), "--idle-exit", str(IDLE_EXIT)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:            # start-up (imports, recovery) ends at this line
        if line.startswith("ingest: consuming"):
            break
    consuming = time.monotonic()
    if until is not None:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        while process.poll() is None and stored_count(engine) < until:
            time.sleep(0.2)
        engine.dispose()
        process.send_signal(signal.SIGKILL)
        process.wait()
        return time.monotonic() - consuming, None
    out, _ = process.communicate()
    summary = json.loads(out.strip().splitlines()[-1])
    return time.monotonic() - consuming - IDLE_EXIT, summary


def read_back(folder: Path) -> tuple[int, int]:
    """(rows, unique prediction ids) in the inference log."""
    from watchkeeper.inference_log import InferenceLog

    frame = InferenceLog(folder).read_predictions(MODEL, DAY)
    ids = frame["prediction_id"] if frame is not None else []
    return len(ids), len(set(ids))


def bench(broker: str, n: int) -> dict:
    os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", "bench-signing-key-" + "0" * 32)
    stream = f"WKBENCH{uuid.uuid4().hex[:8].upper()}" if broker == "nats" else f"wk:bench:{uuid.uuid4().hex[:8]}"
    out = producer(broker, stream)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = setup_store(folder)
            started = time.monotonic()
            out.publish(events(n))
            published_s = time.monotonic() - started
            before = bare_rate(_group(out.source, "bare"), n // 2)
            consuming, runs = 0.0, 0
            for fraction in KILL_AT:
                seconds, _ = run_consumer(_group(out.source, "ingest"), folder, url, int(n * fraction))
                consuming, runs = consuming + seconds, runs + 1
            seconds, summary = run_consumer(_group(out.source, "ingest"), folder, url, None)
            consuming += seconds
            after = bare_rate(_group(out.source, "bare-after"), n - n // 2)
            adapter = bare_rate(_group(out.source, "bare-adapter"), n // 2, adapter=True) if broker == "redis" else None
            bare = n / ((n // 2) / before + (n - n // 2) / after)
            rows, unique = read_back(folder)
    finally:
        _drop(out)
    return {"broker": broker, "events": n, "stored": unique, "duplicates": rows - unique, "lost": n - unique,
            "events_per_s": round(n / consuming, 1), "bare_events_per_s": round(bare, 1),
            "ratio_to_bare": round(n / consuming / bare, 3),
            "bare_before_events_per_s": round(before, 1), "bare_after_events_per_s": round(after, 1),
            "bare_adapter_events_per_s": round(adapter, 1) if adapter else None, "kills": runs, "publish_events_per_s": round(n / published_s, 1),
            "redelivered_duplicates_absorbed": summary["duplicates"] if summary else None,
            "load_average_1m": round(os.getloadavg()[0], 1), "cores": os.cpu_count()}


def _drop(out) -> None:
    """Delete the bench's stream; a broker too slow to answer (a million messages to delete on a
    loaded machine) costs a note, not the run's figures."""
    try:
        out.drop()
    except Exception as error:   # any client's timeout or connection error
        print(f"bench_ingest: the stream was not deleted: {type(error).__name__}: {error}", file=sys.stderr)


def _group(source: str, name: str) -> str:
    """The source URL with its own consumer group (Redis) or durable consumer (NATS)."""
    key = "durable" if source.startswith("nats") else "group"
    return f"{source}&{key}={name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["nats", "redis"], required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--format", choices=["json", "text"], default="json")
    args = parser.parse_args()
    result = bench(args.broker, args.events)
    print(json.dumps(result) if args.format == "json" else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
