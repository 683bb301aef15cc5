"""Alert records from a real verdict, and the outbox and its sender on SQLite and PostgreSQL.

Channels here are small recorders (the channels themselves are tested against HTTP stand-ins
in their own tests); what is under test is the queue: idempotent enqueue, the backoff schedule,
Retry-After, dead letters, leases, escalation bookkeeping. The clock is injected.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from watchkeeper.alerting.builder import FEATURE_KEYS, AlertBuildError, alert_links, build_alerts
from watchkeeper.alerting.outbox import DEAD, DELIVERED, PENDING, Outbox, Sender
from watchkeeper.store.schema import outbox as outbox_table
from watchkeeper.alerting.record import AlertRecord, ChannelError, Delivery
from watchkeeper.drift import evaluate_drift
from watchkeeper.health import WindowEvidence, assess
from watchkeeper.profile import fit_profile

NOON_UTC = 1_794_312_000.0          # 2026-11-10 12:00:00 UTC: outside the example's quiet hours


class Clock:
    def __init__(self, t: float = NOON_UTC) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Recorder:
    """A channel that raises the scripted errors first, then records what it delivered."""

    def __init__(self, name: str, errors: list[Exception] | None = None) -> None:
        self.name, self.errors, self.sent = name, list(errors or []), []
        self.lock = threading.Lock()

    def send(self, alert: AlertRecord) -> Delivery:
        with self.lock:
            if self.errors:
                raise self.errors.pop(0)
            self.sent.append(alert.fingerprint)
        return Delivery(self.name, f"{self.name}-{alert.fingerprint}", "posted")


def alert(i: int = 0, severity: str = "warning", window: str = "2026-11-10", model: str = "churn-eu") -> AlertRecord:
    return AlertRecord(fingerprint=f"{model}:3:data_drift:{i}", model=model, version="3", window=window,
                       severity=severity, kind="data_drift", title="t", summary="s")


@pytest.fixture
def engine(store_url):
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def outbox(engine, clock):
    return Outbox(engine, clock=clock, database_clock=clock)


def sender(outbox, clock, *channels, **params) -> Sender:
    return Sender(outbox, {c.name: c for c in channels}, clock=clock, sleep=clock.sleep, seed=0, **params)


def test_enqueueing_twice_is_a_no_op(outbox):
    assert outbox.enqueue(alert(), ["slack", "jira"]) == 2
    assert outbox.enqueue(alert(), ["slack", "jira"]) == 0
    assert outbox.enqueue(AlertRecord(**{**alert().to_dict(), "occurrence": 2}), ["slack"]) == 1
    rows = outbox.rows()
    assert [(r["channel"], r["occurrence"], r["status"]) for r in rows] == [
        ("slack", 1, PENDING), ("jira", 1, PENDING), ("slack", 2, PENDING)]
    assert rows[0]["payload"] == alert().to_dict()


def test_backoff_doubles_with_jitter_up_to_the_cap_then_the_row_is_dead(outbox, clock):
    down = Recorder("slack", [ChannelError("Slack: HTTP 503") for _ in range(10)])
    s = sender(outbox, clock, down, base_delay=2.0, max_delay=20.0, max_attempts=6)
    outbox.enqueue(alert(), ["slack"])
    waits = []
    for attempt in range(1, 6):
        assert s.run_once().retried == 1
        [row] = outbox.rows()
        waits.append(row["next_attempt_at"].timestamp() - clock())
        assert s.run_once().claimed == 0                      # not due yet
        clock.t += waits[-1]
    caps = [2, 4, 8, 16, 20]
    assert all(cap / 2 <= w <= cap for w, cap in zip(waits, caps)), waits
    assert s.run_once().dead == 1
    [row] = outbox.rows()
    assert (row["status"], row["attempts"]) == (DEAD, 6)
    assert row["last_error"] == "gave up after 6 attempts: Slack: HTTP 503"


def test_retry_after_replaces_the_backoff(outbox, clock):
    limited = Recorder("slack", [ChannelError("Slack: HTTP 429 ratelimited", retry_after=30)])
    s = sender(outbox, clock, limited, base_delay=1.0)
    outbox.enqueue(alert(), ["slack"])
    assert s.run_once().retried == 1
    clock.t += 29.9
    assert s.run_once().claimed == 0
    clock.t += 0.1
    assert s.run_once().delivered == 1
    [row] = outbox.rows()
    assert (row["status"], row["attempts"], row["external_id"], row["last_error"]) == (
        DELIVERED, 2, "slack-churn-eu:3:data_drift:0", None)


def test_permanent_errors_and_unknown_channels_are_dead_at_once_and_can_be_requeued(outbox, clock):
    jira = Recorder("jira", [ChannelError("Jira: HTTP 400 project MLOPS does not exist", permanent=True)])
    s = sender(outbox, clock, jira)
    outbox.enqueue(alert(), ["jira", "pagerduty"])
    assert s.run_once().dead == 2
    errors = {r["channel"]: (r["status"], r["attempts"], r["last_error"]) for r in outbox.rows()}
    assert errors == {"jira": (DEAD, 1, "Jira: HTTP 400 project MLOPS does not exist"),
                      "pagerduty": (DEAD, 1, "no channel named 'pagerduty' in this sender")}
    assert outbox.requeue_dead("jira") == 1
    assert s.run_once().delivered == 1 and jira.sent == ["churn-eu:3:data_drift:0"]


def test_a_row_whose_payload_cannot_be_decoded_is_dead_and_the_others_are_sent(outbox, clock):
    slack = Recorder("slack")
    for i in range(3):
        outbox.enqueue(alert(i), ["slack"])
    with outbox.engine.begin() as conn:
        conn.execute(outbox_table.update().where(outbox_table.c.id == 2).values(payload_json='{"fingerprint": '))
    stats = sender(outbox, clock, slack).run_once()
    assert (stats.delivered, stats.dead) == (2, 1) and slack.sent == [alert(0).fingerprint, alert(2).fingerprint]
    [dead] = outbox.rows(DEAD)
    assert dead["payload"] is None and dead["last_error"].startswith("unreadable payload (JSONDecodeError: ")


def test_an_unexpected_exception_is_retried_and_recorded_without_its_message(outbox, clock):
    leaky = Recorder("teams", [RuntimeError("POST https://hooks.example/sig=SECRET failed")])
    s = sender(outbox, clock, leaky)
    outbox.enqueue(alert(), ["teams"])
    assert s.run_once().retried == 1
    [row] = outbox.rows()
    assert row["last_error"] == "RuntimeError raised by channel 'teams' (not a ChannelError)"


def test_a_failing_channel_is_paused_for_the_rest_of_the_pass(outbox, clock):
    down = Recorder("slack", [ChannelError("Slack: connection refused") for _ in range(100)])
    up = Recorder("jira")
    s = sender(outbox, clock, down, up, pause_after=3)
    for i in range(10):
        outbox.enqueue(alert(i), ["slack", "jira"])
    stats = s.run_once()
    assert (stats.retried, stats.deferred, stats.delivered) == (3, 7, 10)
    assert sorted(r["attempts"] for r in outbox.rows(PENDING)) == [0] * 7 + [1] * 3
    assert s.run_once().claimed == 0                   # paused for every sender, rows keep their place
    clock.t += s.base_delay                            # the first pause is one base delay at most
    assert s.run_once().retried == 1                   # then one try, and a longer pause
    assert outbox.next_due().timestamp() - clock() > s.base_delay / 2


def test_a_killed_senders_lease_expires_and_another_sender_delivers(outbox, clock):
    outbox.enqueue(alert(), ["slack"])
    [claimed] = outbox.claim(10, timedelta(seconds=60))    # then the process died
    slack = Recorder("slack")
    s = sender(outbox, clock, slack)
    assert s.run_once().claimed == 0
    clock.t += 60
    assert s.run_once().delivered == 1
    assert outbox.renew(claimed["lease_owner"], timedelta(seconds=60)) == set()   # nothing left to send
    assert not outbox.finish(claimed, status=DEAD)                       # the dead owner lost its lease
    assert outbox.counts() == {PENDING: 0, DELIVERED: 1, DEAD: 0}


def test_two_concurrent_senders_never_send_the_same_row(outbox, clock):
    for i in range(300):
        outbox.enqueue(alert(i), ["slack"])
    slack = Recorder("slack")
    senders = [Sender(outbox, {"slack": slack}, clock=clock, batch_size=7) for _ in range(2)]
    threads = [threading.Thread(target=s.run_once, args=(1000,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slack.sent) == 300 and max(Counter(slack.sent).values()) == 1
    assert outbox.counts()[DELIVERED] == 300


# --- leases on the database's clock: no sender's clock can make two senders hold one row --------

class SlowRecorder(Recorder):
    """A channel whose every send takes `seconds` of real time."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds

    def send(self, alert: AlertRecord) -> Delivery:
        time.sleep(self.seconds)
        return super().send(alert)


def run_concurrently(*senders: Sender, limit: int = 10_000) -> None:
    threads = [threading.Thread(target=s.run_once, args=(limit,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_a_sender_whose_clock_runs_ahead_by_more_than_the_lease_sends_nothing_twice(store_url):
    """Each sender is its own Outbox on its own engine, as separate processes would be; one's
    clock is 30 s ahead, six leases long. Before leases used the database's clock, it took over
    the other sender's rows in flight: 84 of 200 alerts went out twice on SQLite, 81 on PostgreSQL
    (with a 1 s lease and a 10 s skew)."""
    producer = Outbox(store_url)
    for i in range(200):
        producer.enqueue(alert(i), ["slack"])
    slack = SlowRecorder("slack", 0.002)
    honest = Sender(Outbox(store_url), {"slack": slack}, lease_seconds=5.0, batch_size=10)
    ahead = Sender(Outbox(store_url), {"slack": slack}, clock=lambda: time.time() + 30.0,
                   lease_seconds=5.0, batch_size=10)
    run_concurrently(honest, ahead)
    assert sorted(Counter(slack.sent).values()) == [1] * 200           # every alert, once
    assert producer.counts() == {PENDING: 0, DELIVERED: 200, DEAD: 0}


def test_a_batch_slower_than_its_lease_sends_nothing_twice(store_url):
    """A batch of twelve 0.4 s sends takes 4.8 s, more than its 4 s lease; the other sender claims
    one row at a time, the oldest due first, and has twelve rows of its own to send meanwhile, so
    it would take over the batch's last rows as soon as their lease ran out (it did, before). The
    batch renews its lease at half-time and sends only the rows it still holds, so none is sent
    by both. (A send must end within half a lease: 1.6 s to spare here, for a machine that stalls
    a thread.)"""
    producer = Outbox(store_url)
    for i in range(24):
        producer.enqueue(alert(i), ["slack"])
    slack = SlowRecorder("slack", 0.4)
    run_concurrently(*(Sender(Outbox(store_url), {"slack": slack}, lease_seconds=4.0, batch_size=size)
                       for size in (12, 1)))
    assert sorted(Counter(slack.sent).values()) == [1] * 24
    assert producer.counts() == {PENDING: 0, DELIVERED: 24, DEAD: 0}


def test_a_pass_claims_no_new_batch_after_its_budget(outbox, clock):
    class Slow(Recorder):
        def send(self, alert: AlertRecord) -> Delivery:
            clock.t += 1.0
            return super().send(alert)

    for i in range(30):
        outbox.enqueue(alert(i), ["slack"])
    stats = sender(outbox, clock, Slow("slack"), batch_size=5).run_once(limit=30, budget=12)
    assert stats.delivered == 15                      # batches started at 0, 5 and 10 s


def test_drain_sleeps_until_rows_come_due(outbox, clock):
    flaky = Recorder("slack", [ChannelError("Slack: HTTP 503"), ChannelError("Slack: HTTP 429", retry_after=45)])
    s = sender(outbox, clock, flaky, base_delay=10.0)
    outbox.enqueue(alert(), ["slack"])
    start = clock()
    stats = s.drain(timeout=600)
    assert (stats.attempts, stats.delivered) == (3, 1)
    assert 5 + 45 <= clock() - start <= 10 + 45 + 1


# --- from model_health's verdict to alert records to outbox rows ------------------------------

@pytest.fixture(scope="module")
def verdict():
    """A real verdict: income shifted by one sd, accuracy down 20 points, one ADWIN alarm."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"income": rng.normal(0, 1, 3000), "age": rng.normal(40, 10, 3000)})
    current = pd.DataFrame({"income": rng.normal(1, 1, 2000), "age": rng.normal(40, 10, 2000)})
    window = WindowEvidence(
        "binary", evaluate_drift(fit_profile(reference), current).to_dict(),
        [{"name": "accuracy", "value": 0.70, "lower": 0.66, "upper": 0.74}],
        {"metrics": {"accuracy": {"name": "accuracy", "value": 0.9, "lower": 0.88, "upper": 0.92}},
         "importance": {"income": 0.7, "age": 0.3}},
        n_labelled=500, concept_alarms=[{"detector": "adwin", "index": 120}])
    return assess(window, "2026-11-10", pd.DataFrame())


LINKS = alert_links("http://dagster.local", "run-1", "http://mlflow.local", "churn eu", "3")


def test_a_verdict_becomes_one_alert_per_problem_kind_with_its_evidence(verdict):
    assert verdict.status == "degraded"
    drift, concept, performance = build_alerts("churn eu", "3", "2026-11-10", "binary", verdict.status,
                                               verdict.reasons, LINKS)
    assert [(a.fingerprint, a.kind, a.severity) for a in (drift, concept, performance)] == [
        ("churn eu:3:data_drift", "data_drift", "warning"),
        ("churn eu:3:concept_drift", "concept_drift", "critical"),
        ("churn eu:3:performance", "performance", "critical")]
    [reason] = [r for r in verdict.reasons if r["signal"] == "data_drift"]
    assert drift.features == [{k: reason["features"][0][k] for k in FEATURE_KEYS}]      # income, KS, Wasserstein
    assert performance.metrics == [{"name": "accuracy", "value": 0.70, "lower": 0.66, "upper": 0.74,
                                    "reference": 0.9, "delta": pytest.approx(-0.2)}]
    assert "likely cause: Performance degraded and inputs the model relies on drifted" in performance.summary
    assert performance.features == drift.features                     # the cause, with its test statistics
    assert performance.links["mlflow_model_version"] == "http://mlflow.local/#/models/churn%20eu/versions/3"
    assert performance.links["dagster_run"] == "http://dagster.local/runs/run-1"


def test_an_alert_holds_aggregates_only(verdict):
    alerts = build_alerts("m", "3", "2026-11-10", "binary", verdict.status, verdict.reasons, {})
    payload = json.dumps([a.to_dict() for a in alerts])
    for leaked in ("decisions", "importance", "n_labelled", "prediction_id", "history"):
        assert f'"{leaked}"' not in payload
    # a concept-drift alarm says which detector fired where and the error rates around it; a segment, its change
    assert all(set(alarm) == {"detector", "index", "timestamp", "error_rate_before", "error_rate_after"}
               for a in alerts for alarm in a.alarms)
    assert all(set(segment) == {"segment", "delta"} for a in alerts for segment in a.segments)
    assert [a.alarms[0]["detector"] for a in alerts if a.kind == "concept_drift"] == ["adwin"]


def test_fingerprints_are_stable_across_windows_and_new_per_version(verdict):
    def fingerprints(version: str, window: str) -> list[str]:
        alerts = build_alerts("m", version, window, "binary", verdict.status, verdict.reasons, {})
        return [a.fingerprint for a in alerts]

    assert fingerprints("3", "2026-11-10") == fingerprints("3", "2026-11-11") != fingerprints("4", "2026-11-11")


def test_no_data_is_an_info_data_quality_alert_and_ok_is_none():
    [alert] = build_alerts("m", "1", "2026-11-10", "binary", "no_data",
                           [{"signal": "traffic", "detail": "no predictions in this window"}], {})
    assert (alert.kind, alert.severity, alert.fingerprint) == ("data_quality", "info", "m:1:data_quality")
    assert build_alerts("m", "1", "2026-11-10", "binary", "ok", [{"signal": "history", "detail": "x"}], {}) == []


def test_an_unknown_signal_is_a_one_line_error():
    message = r"^reasons\[0\]: unknown signal 'vibes' \(one of data_drift, .*, history\)$"
    with pytest.raises(AlertBuildError, match=message):
        build_alerts("m", "1", "2026-11-10", "binary", "drifted", [{"signal": "vibes", "detail": "?"}], {})
