"""Delivery that loses nothing and duplicates nothing, through real failures.

1,000 alerts are routed by a policy to Slack (one channel per team), Jira and ServiceNow
(critical alerts), served by the HTTP stand-ins (tests/standins.py) and sent by the real
channels. Meanwhile every stand-in fails 30% of requests at random, all of them go down
(connections refused) for a while, and the sender, a separate process, is killed with SIGKILL
right after Jira created an issue whose answer it had not read yet, then restarted. At the
end each alert is exactly once at each of its channels, counted by fingerprint at the
stand-ins, and the outbox has nothing pending or dead.

Run: .venv/bin/pytest -s tests/test_delivery_reliability.py (prints the figures recorded in
docs/benchmarks.md, "Alert delivery").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from standins import JiraStandin, ServiceNowStandin, SlackStandin
from watchkeeper.alerting.channels.fingerprint import fingerprint_key
from watchkeeper.alerting.outbox import DEAD, DELIVERED, PENDING, Outbox, Sender
from watchkeeper.alerting.policy import load_policy
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.problems import ProblemLog
from watchkeeper.store import MonitoringStore

N_ALERTS = 1000
FAIL_RATE = 0.3
DOWN_SECONDS = 3.0
TEAMS = ("ml-platform", "risk", "growth", "search", "pricing", "fraud", "ads", "ops")
# Fast backoff for a test; pause_after=10 so that only the outage, not Jira's 76% failed sends
# (30% of each of its 4 requests), pauses a channel.
SENDER = dict(base_delay=0.05, max_delay=0.5, lease_seconds=3.0, max_attempts=100, batch_size=20, pause_after=10)


def policy_text(slack: SlackStandin, jira: JiraStandin, servicenow: ServiceNowStandin) -> str:
    """Every alert to its team's Slack channel; critical drift also to Jira, critical performance
    and data-quality problems also to ServiceNow."""
    lines = ["version: 1", "cooldown: 1h", "channels:"]
    local = "allow_http_loopback: true"   # the stand-ins speak http on 127.0.0.1
    lines += [f"  slack-{team}: {{type: slack, channel_id: C{i}, base_url: '{slack.api_url}', {local}}}"
              for i, team in enumerate(TEAMS)]
    lines += [f"  jira: {{type: jira, server: '{jira.url}', project: OPS, user: {jira.user}, {local}}}",
              f"  servicenow: {{type: servicenow, instance_url: '{servicenow.url}', {local}}}", "teams:"]
    lines += [f'  {team}: ["{team}-*"]' for team in TEAMS]
    lines += ["routes:"] + [f"  - {{match: {{team: {team}}}, to: [slack-{team}]}}" for team in TEAMS]
    lines += ["  - {match: {min_severity: critical, kind: [data_drift, concept_drift]}, to: [jira]}",
              "  - {match: {min_severity: critical, kind: [performance, data_quality]}, to: [servicenow]}"]
    return "\n".join(lines) + "\n"


def alerts() -> list[AlertRecord]:
    """Warnings and criticals (3:2) of every kind across the teams' models, with real-sized evidence."""
    kinds = ("data_drift", "concept_drift", "performance", "data_quality")
    result = []
    for i in range(N_ALERTS):
        model, kind = f"{TEAMS[i % len(TEAMS)]}-model-{i:04d}", kinds[i % len(kinds)]
        result.append(AlertRecord(
            fingerprint=f"{model}:1:{kind}", model=model, version="1", window="2026-11-10",
            severity="critical" if i % 5 < 2 else "warning", kind=kind,
            title=f"{model} v1: {kind.replace('_', ' ')}", summary=f"binary model {model} v1, window 2026-11-10",
            features=[{"name": f"f{j}", "test": "ks", "statistic": 0.2, "p_value": 1e-6, "effect_size": 0.3,
                       "effect_metric": "wasserstein"} for j in range(3)],
            metrics=[{"name": "accuracy", "value": 0.71, "lower": 0.66, "upper": 0.75, "reference": 0.9,
                      "delta": -0.19}],
            links={"dagster_run": "http://dagster.local/runs/r1"}))
    return result


def delivered_at_standins(slack: SlackStandin, jira: JiraStandin, servicenow: ServiceNowStandin) -> Counter:
    """(channel, fingerprint key) -> how many messages/tickets the services hold for it."""
    found = Counter()
    for message in slack.messages:
        fingerprint = message["metadata"]["event_payload"]["fingerprint"]
        found[(f"slack-{TEAMS[int(message['channel'][1:])]}", fingerprint_key(fingerprint))] += 1
    for issue in jira.issues:
        found[("jira", next(label for label in issue["fields"]["labels"] if label != "watchkeeper"))] += 1
    for incident in servicenow.incidents:
        found[("servicenow", incident["correlation_id"])] += 1
    return found


class SenderProcess:
    """`main` below in a child process, its output in files (a full pipe must not stall it)."""

    def __init__(self, tmp_path: Path, name: str, db_url: str, policy_path: Path, until: int, env: dict) -> None:
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen([sys.executable, __file__, db_url, str(policy_path), str(until)],
                                            env=env, stdout=out, stderr=err, text=True)

    def finish(self, timeout: float) -> dict:
        """Wait for a clean exit; the stats the sender printed."""
        code = self.process.wait(timeout)
        assert code == 0, self.err.read_text()[-2000:]
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            assert self.process.wait(10) == -signal.SIGKILL


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def outage(standins: tuple) -> None:
    """Every service refuses connections for DOWN_SECONDS."""
    for standin in standins:
        standin.down(True)
    time.sleep(DOWN_SECONDS)
    for standin in standins:
        standin.down(False)


def kill_after_a_landed_create(sender: SenderProcess, jira: JiraStandin) -> None:
    """Kill the sender between a send that landed and its mark: Jira creates the next issue,
    then holds its answer back, and the process dies waiting for it."""
    jira.fail_rate(0)
    jira.delay(5.0, method="POST", path="/rest/api/2/issue")
    created = len(jira.issues)
    wait_until(lambda: len(jira.issues) > created, 60, "a Jira issue created")
    sender.kill()
    jira.delay(0)
    jira.fail_rate(FAIL_RATE, seed=7)


@pytest.mark.timeout(180)
def test_every_alert_arrives_exactly_once_through_failures_outages_and_a_killed_sender(tmp_path):
    with SlackStandin(channels=tuple(f"C{i}" for i in range(len(TEAMS)))) as slack, \
            JiraStandin(projects=("OPS",)) as jira, ServiceNowStandin() as servicenow:
        standins = (slack, jira, servicenow)
        policy_path = tmp_path / "alerting.yaml"
        policy_path.write_text(policy_text(slack, jira, servicenow))
        policy, db_url = load_policy(policy_path), f"sqlite:///{tmp_path / 'monitoring.db'}"
        problems = ProblemLog(MonitoringStore(db_url))
        outbox = problems.outbox
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.token, "JIRA_API_TOKEN": jira.token,
               "SERVICENOW_USER": servicenow.user, "SERVICENOW_PASSWORD": servicenow.password}
        expected = Counter({(channel, fingerprint_key(a.fingerprint)): 1
                            for a in alerts() for channel in policy.route(a)})
        jira_share = sum(1 for channel, _ in expected if channel == "jira")
        for i, standin in enumerate(standins):
            standin.fail_rate(FAIL_RATE, seed=i)
        progress = lambda: outbox.counts()[DELIVERED] / len(expected)  # noqa: E731

        started = time.perf_counter()
        first = SenderProcess(tmp_path, "first", db_url, policy_path, len(expected), env)
        try:
            for alert in alerts():              # model_health enqueues while the sender is already delivering
                problems.record(alert.model, alert.version, alert.window, [alert], policy)
            enqueued = time.perf_counter() - started
            wait_until(lambda: progress() >= 0.3, 120, "30% delivered")
            outage(standins)
            wait_until(lambda: progress() >= 0.6 or len(jira.issues) >= jira_share / 2, 120, "60% delivered")
            kill_after_a_landed_create(first, jira)
        finally:
            first.kill()
        landed, at_kill = delivered_at_standins(*standins), outbox.counts()
        landed_unmarked = sum((row["channel"], fingerprint_key(row["fingerprint"])) in landed
                              for row in outbox.rows(PENDING))
        restarted = SenderProcess(tmp_path, "restarted", db_url, policy_path, len(expected), env)
        try:
            restarted_stats = restarted.finish(timeout=150)
        finally:
            restarted.kill()
        wall = time.perf_counter() - started

        at_services, rows = delivered_at_standins(*standins), outbox.rows()
        print("\nalert delivery:", json.dumps({
            "alerts": N_ALERTS, "deliveries": len(expected), "delivered": sum(r["status"] == DELIVERED for r in rows),
            "dead": sum(r["status"] == DEAD for r in rows), "attempts": sum(r["attempts"] for r in rows),
            "http_requests": sum(len(s.requests) for s in standins), "missing": len(expected - at_services),
            "duplicates": sum(n - 1 for n in at_services.values() if n > 1),
            "landed_unmarked_at_kill": landed_unmarked, "delivered_at_kill": at_kill[DELIVERED],
            "enqueue_s": round(enqueued, 1), "wall_s": round(wall, 1), "restarted_sender": restarted_stats}))

        assert landed_unmarked >= 1, "the kill did not hit the window between send and mark"
        assert at_services == expected                         # every alert, at each of its channels, once
        assert outbox.counts() == {PENDING: 0, DELIVERED: len(expected), DEAD: 0}


def main(db_url: str, policy_path: str, until: str) -> None:
    """The sender process: deliver until `until` rows are finished, then print what this run did.

    (A deployed sender never stops; this one must outlive moments when the producer is behind.)
    """
    outbox = Outbox(db_url)
    sender = Sender(outbox, load_policy(policy_path).build_channels(), seed=os.getpid(), **SENDER)
    stats = sender.drain(poll=0.2)
    while sum(outbox.counts()[status] for status in (DELIVERED, DEAD)) < int(until):
        time.sleep(0.2)
        stats += sender.drain(poll=0.2)
    print(json.dumps({"claimed": stats.claimed, "delivered": stats.delivered, "retried": stats.retried,
                      "dead": stats.dead, "deferred": stats.deferred}))


if __name__ == "__main__":
    main(*sys.argv[1:])
