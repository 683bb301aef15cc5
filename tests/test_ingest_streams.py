"""`watchkeeper ingest` against the real NATS JetStream and Redis on loopback.

- SIGKILLed at random points while a producer publishes, and restarted: every event ends in the
  inference log exactly once, malformed ones in the dead-letter store with their reasons.
- Two consumers of one group share a stream: each stores a part, none stores an event twice.
- A concept shift in a live label stream: the concept-drift alert is in the outbox within 5 s
  (p95 over several models) of the label that made the detector fire, and the day's evaluation
  reports the same alarms without queueing the alert twice.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require_service
from test_ingest import reference
from watchkeeper.alerting.policy import load_policy
from watchkeeper.concept import ERRORS, LIVE
from watchkeeper.config import MonitoringConfig
from watchkeeper.inference_log import InferenceLog
from watchkeeper.monitor import WindowMonitor
from watchkeeper.reference import ModelReference
from watchkeeper.store import MonitoringStore

sys.path.insert(0, str(ROOT / "bench"))
from stream_producers import label, prediction, producer  # noqa: E402

pytestmark = [pytest.mark.service, pytest.mark.timeout(600)]
PORTS = {"redis": ("Redis", 6379), "nats": ("NATS", 4222)}
POLICY_FILE = ROOT / "deploy" / "alerting.demo.yaml"
TODAY = datetime.now(timezone.utc).date().isoformat()
FEATURES = {"x": 0.5, "plan": "a", "code": 2}


@pytest.fixture(params=["redis", "nats"])
def stream(request):
    require_service(*PORTS[request.param])
    name = f"WKTEST{uuid.uuid4().hex[:8].upper()}" if request.param == "nats" else f"wk:test:{uuid.uuid4().hex[:8]}"
    out = producer(request.param, name)
    yield out
    out.drop()


def make_store(folder: Path, models: list[str]) -> tuple[str, MonitoringStore]:
    url = f"sqlite:///{folder / 'monitoring.db'}"
    store, base = MonitoringStore(url), reference()
    for model in models:
        ref = ModelReference(model, "1", base.task, base.features, base.profile, {}, base.classes)
        store.put_profile(model, "1", ref.task, *ref.to_stored())
    return url, store


def start(source: str, folder: Path, url: str, *extra: str) -> subprocess.Popen:
    """A `watchkeeper ingest` process, returned once it is consuming."""
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", "--source", source, "--dir", str(folder),
                                "--store-url", url, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.errors = []
    for line in process.stderr:
        if line.startswith("ingest: consuming"):
            threading.Thread(target=lambda: process.errors.extend(process.stderr), daemon=True).start()   # drained
            return process
    raise AssertionError(f"ingest did not start: {process.wait()} {process.stdout.read()}")


def finish(process: subprocess.Popen) -> dict:
    out = process.stdout.read()
    assert process.wait(timeout=300) == 0, "".join(process.errors[-20:])
    return json.loads(out.strip().splitlines()[-1])


def logged_ids(folder: Path, model: str) -> list[str]:
    frame = InferenceLog(folder).read_predictions(model, TODAY)
    return [] if frame is None else frame["prediction_id"].tolist()


def test_sigkilled_consumers_leave_every_event_in_the_log_exactly_once(stream, tmp_path):
    url, store = make_store(tmp_path, ["churn"])
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    valid = [f"p{i}" for i in range(3000)]
    stamp = f"{TODAY}T00:00:01Z"
    payloads = [prediction("churn", pid, stamp, i % 2, FEATURES) for i, pid in enumerate(valid)]
    payloads += [prediction("churn", pid, stamp, 0, FEATURES) for pid in rng.sample(valid, 100)]   # producer retries
    bad = [b"{oops", prediction("churn", "bad-feature", stamp, 1, {"x": "high", "plan": "a", "code": 1}),
           prediction("churn", "bad-class", stamp, 5, FEATURES), prediction("ghost", "bad-model", stamp, 1, FEATURES)]
    payloads += bad * 5
    rng.shuffle(payloads)

    def publish() -> None:
        for start_at in range(0, len(payloads), 50):
            stream.publish(payloads[start_at:start_at + 50])
            time.sleep(0.02)

    producing = threading.Thread(target=publish)
    producing.start()
    source = stream.source.replace("ack_wait=5", "ack_wait=2").replace("claim_idle=5", "claim_idle=2")
    options = ("--consumer", "c1", "--batch", "200")
    for kill in range(3):
        process = start(source, tmp_path, url, *options)
        time.sleep(rng.uniform(0.2, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
    producing.join()
    finish(start(source, tmp_path, url, *options, "--idle-exit", "5"))

    ids = logged_ids(tmp_path, "churn")
    assert sorted(ids) == sorted(valid), f"seed {seed}: {len(ids)} rows, {len(set(ids))} unique of {len(valid)}"
    letters = store.ingest_rows.dead_letters()
    reasons = {json.loads(p)["prediction_id"] if p.startswith("{\"") else p: r
               for p, r in ((d["payload"], d["reason"]) for d in letters)}
    assert len(letters) == len(bad) * 5, f"seed {seed}"   # each published copy once, however often redelivered
    assert reasons["{oops"].startswith("not JSON")
    assert reasons["bad-feature"] == "feature 'x': must be a number"
    assert "not one of the classes" in reasons["bad-class"]
    assert "unknown model 'ghost'" in reasons["bad-model"]
    assert not {"bad-feature", "bad-class", "bad-model"} & set(ids)


def test_two_consumers_of_one_group_share_the_stream_and_store_each_event_once(stream, tmp_path):
    url, _ = make_store(tmp_path, ["churn"])
    stamp = f"{TODAY}T00:00:01Z"
    consumers = [start(stream.source, tmp_path, url, "--consumer", name, "--batch", "100") for name in ("c1", "c2")]
    try:
        for start_at in range(0, 6000, 200):      # both are consuming before the first event
            stream.publish(prediction("churn", f"p{i}", stamp, i % 2, FEATURES) for i in range(start_at, start_at + 200))
            time.sleep(0.02)
        deadline = time.monotonic() + 120
        while len(logged_ids(tmp_path, "churn")) < 6000:
            assert time.monotonic() < deadline, "the events were not all stored"
            time.sleep(0.5)
    finally:
        for consumer in consumers:
            consumer.send_signal(signal.SIGTERM)
    summaries = [finish(c) for c in consumers]
    assert all(s["predictions"] > 0 for s in summaries), summaries
    assert sum(s["predictions"] for s in summaries) == 6000
    ids = logged_ids(tmp_path, "churn")
    assert len(ids) == len(set(ids)) == 6000


def test_a_concept_shift_in_a_live_stream_is_an_outbox_alert_within_seconds_and_the_days_alarm(stream, tmp_path):
    models = [f"m{i}" for i in range(4)]
    url, store = make_store(tmp_path, models)
    rng = np.random.default_rng(7)
    stamp = f"{TODAY}T00:00:01Z"
    n_before, n_after = 2000, 800
    predicted = {m: rng.integers(0, 2, n_before + n_after) for m in models}
    stream.publish(prediction(m, f"{m}-{i}", stamp, int(p), FEATURES) for m in models for i, p in enumerate(predicted[m]))
    process = start(stream.source, tmp_path, url, "--policy", str(POLICY_FILE), "--batch", "500")
    try:
        deadline = time.monotonic() + 120
        while sum(len(logged_ids(tmp_path, m)) for m in models) < len(models) * (n_before + n_after):
            assert time.monotonic() < deadline, "predictions were not ingested"
            time.sleep(0.5)
        published: dict[str, float] = {}
        for start_at in range(0, n_before + n_after, 25):     # ~1,000 labels/s, the models interleaved
            chunk = []
            for m in models:
                for i in range(start_at, min(start_at + 25, n_before + n_after)):
                    wrong = rng.random() < (0.1 if i < n_before else 0.6)
                    chunk.append(label(m, f"{m}-{i}", int(predicted[m][i]) ^ int(wrong)))
            stream.publish(chunk)
            now = time.time()
            published |= {f"{m}-{i}": now for m in models for i in range(start_at, start_at + 25)}
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while len({r["fingerprint"] for r in store.outbox().rows()}) < len(models):
            assert time.monotonic() < deadline, "no concept-drift alert for every model"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        finish(process)

    alerts = {}
    for row in store.outbox().rows():
        alerts.setdefault(row["payload"]["model"], row)
    delays = []
    for m in models:
        day = store.stream_day(m, ERRORS, TODAY)
        first = day.alarms[0]
        assert day.source == LIVE and first["index"] >= n_before, (m, first)   # fired on the shift, not before
        assert alerts[m]["fingerprint"] == f"{m}:1:concept_drift"
        delays.append(alerts[m]["created_at"].timestamp() - published[first["prediction_id"]])
    assert np.percentile(delays, 95) <= 5.0, delays

    def concept_rows() -> list[tuple]:
        return [(r["fingerprint"], r["channel"], r["occurrence"]) for r in store.outbox().rows()
                if r["fingerprint"].endswith(":concept_drift")]

    queued = concept_rows()
    monitor = WindowMonitor(store, InferenceLog(tmp_path), MonitoringConfig(), load_policy(POLICY_FILE))
    for outcome in monitor.evaluate(TODAY):        # every stage: the window, drift, performance, concept, verdict
        reasons = outcome.verdict.reasons
        reason = next((r for r in reasons if r["signal"] == "concept_drift"), None)
        assert reason is not None, (outcome.verdict.status, reasons, outcome.failures)
        assert reason["alarms"] == store.stream_day(outcome.model, ERRORS, TODAY).alarms
    assert concept_rows() == queued      # the same problem, the same window: not queued again
