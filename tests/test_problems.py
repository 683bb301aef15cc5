"""The problem log on SQLite and PostgreSQL: one record per problem, its lifecycle, occurrences
that count windows (not reruns), escalation, and what it queues in the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_outbox import Clock, alert
from watchkeeper.alerting.builder import alert_links, build_alerts
from watchkeeper.alerting.outbox import PENDING
from watchkeeper.alerting.policy import load_policy
from watchkeeper.problems import ACKNOWLEDGED, OPEN, REOPENED, RESOLVED, ProblemLog, fingerprint
from watchkeeper.store import MonitoringStore

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "alerting.yaml"


@pytest.fixture
def store(store_url):
    store = MonitoringStore(store_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(store, clock):
    return ProblemLog(store, clock=clock)


@pytest.fixture
def policy():
    return load_policy(EXAMPLE)


def channels_by_occurrence(log: ProblemLog) -> list[tuple[str, int]]:
    return sorted({(r["channel"], r["occurrence"]) for r in log.outbox.rows()})


def state(log: ProblemLog, alert_fingerprint: str) -> tuple[str, int]:
    [problem] = [p for p in log.problems() if p.fingerprint == alert_fingerprint]
    return problem.state, problem.occurrence


def test_occurrence_counts_windows_not_reruns_and_escalates_at_three(log, clock, policy):
    def window(day: str) -> list[tuple[str, int]]:
        log.record("churn-eu", "3", day, [alert(window=day)], policy)
        return channels_by_occurrence(log)

    assert window("2026-11-10") == [("outbox", 1), ("slack-ml-platform", 1)]
    assert window("2026-11-10") == [("outbox", 1), ("slack-ml-platform", 1)]        # a rerun changes nothing
    clock.t += 3600
    assert window("2026-11-11") == [("outbox", 1), ("slack-ml-platform", 1)]        # cooldown
    clock.t += 3600
    assert window("2026-11-09") == [("outbox", 1), ("slack-ml-platform", 1)]        # a backfill is no new window
    clock.t += 3600
    assert ("teams-ml-leads", 3) in window("2026-11-12")                           # persisted for 3 windows


def test_lifecycle_open_acknowledged_resolved_reopened(log, policy):
    problem = alert(1, "critical")
    log.record("churn-eu", "3", "2026-11-10", [problem], policy)
    assert state(log, problem.fingerprint) == (OPEN, 1)
    assert log.acknowledge(problem.fingerprint) and not log.acknowledge("no:such:problem")
    assert state(log, problem.fingerprint) == (ACKNOWLEDGED, 1)
    log.record("churn-eu", "3", "2026-11-11", [], policy)                  # the newest window is healthy
    assert state(log, problem.fingerprint) == (RESOLVED, 1)
    log.record("churn-eu", "3", "2026-11-10", [problem], policy, latest=False)   # an older window, refreshed
    assert state(log, problem.fingerprint) == (RESOLVED, 1)
    log.record("churn-eu", "3", "2026-11-12", [alert(1, "critical", window="2026-11-12")], policy)   # it came back
    assert state(log, problem.fingerprint) == (REOPENED, 2)


def test_an_older_window_resolves_nothing(log, policy):
    problem = alert(1, "critical")
    log.record("churn-eu", "3", "2026-11-10", [problem], policy)
    log.record("churn-eu", "3", "2026-11-09", [], policy, latest=False)
    assert state(log, problem.fingerprint) == (OPEN, 1)


def test_sweep_escalates_an_unacknowledged_critical_after_four_hours(log, clock, policy):
    log.record("churn-eu", "3", "2026-11-10", [alert(severity="critical")], policy)
    clock.t += 3 * 3600
    assert log.sweep(policy) == 0
    clock.t += 3600
    assert log.sweep(policy) == 1 and log.sweep(policy) == 0
    assert [r["channel"] for r in log.outbox.rows()][-1] == "teams-ml-leads"
    [escalated] = [e for e in log.store.audit_entries("alert.queued") if e.details.get("escalation")]
    assert escalated.subject == alert().fingerprint and escalated.details["channels"] == ["teams-ml-leads"]


def test_acknowledged_or_resolved_problems_do_not_escalate(log, clock, policy):
    log.record("churn-eu", "3", "2026-11-10", [alert(1, "critical"), alert(2, "critical")], policy)
    assert log.acknowledge(alert(1).fingerprint)
    log.record("churn-eu", "3", "2026-11-10", [alert(1, "critical")], policy)    # problem 2 went away
    clock.t += 5 * 3600
    assert log.sweep(policy) == 0


def test_a_rolled_back_transaction_leaves_no_problem_and_no_notification(log, store, policy):
    """The verdict's transaction: when anything in it fails, the problem and its rows are not there."""
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.put_health("churn-eu", "2026-11-10", "3", "drifted", [], tx=tx)
        log.record("churn-eu", "3", "2026-11-10", [alert()], policy, tx=tx)
        raise RuntimeError("killed before commit")
    assert log.problems() == [] and log.outbox.rows() == [] and store.latest_window("churn-eu") is None


def test_one_fingerprint_function():
    assert fingerprint("churn eu", "3", "performance") == "churn eu:3:performance"
    [built] = build_alerts("churn eu", "3", "2026-11-10", "binary", "no_data",
                           [{"signal": "traffic", "detail": "no predictions"}], {})
    assert built.fingerprint == fingerprint("churn eu", "3", "data_quality")


def test_record_queues_the_verdicts_alerts_where_the_policy_routes_them(log, policy):
    reasons = [{"signal": "data_drift", "detail": "1 of 2 features drifted", "features": []},
               {"signal": "performance", "detail": "accuracy down", "metric": "accuracy", "value": 0.7,
                "lower": 0.66, "upper": 0.74, "reference": 0.9},
               {"signal": "concept_drift", "detail": "1 alarm"}]
    links = alert_links("http://dagster.local", "run-1", "http://mlflow.local", "churn-eu", "3")
    alerts = build_alerts("churn-eu", "3", "2026-11-10", "binary", "degraded", reasons, links)
    plans = log.record("churn-eu", "3", "2026-11-10", alerts, policy)
    assert {fp: sorted(d.channel for d in plan.dispatches) for fp, plan in plans.items()} == {
        "churn-eu:3:data_drift": ["outbox", "slack-ml-platform"],
        "churn-eu:3:concept_drift": ["jira-mlops", "outbox", "servicenow", "slack-ml-platform"],
        "churn-eu:3:performance": ["jira-mlops", "outbox", "servicenow", "slack-ml-platform"]}
    assert len(log.outbox.rows(PENDING)) == 10
