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


def judge(log: ProblemLog, policy, day: str, alerts: list, latest: bool = True, model: str = "churn-eu",
          version: str = "3") -> dict:
    """A window's verdict and its problems, in one transaction, as model_health records them."""
    with log.store.transaction() as tx:
        log.store.put_health(model, day, version, "degraded" if alerts else "ok", [], tx=tx)
        return log.record(model, version, day, alerts, policy, latest, tx=tx)


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
    judge(log, policy, "2026-11-10", [problem])
    assert state(log, problem.fingerprint) == (OPEN, 1)
    assert log.acknowledge(problem.fingerprint) and not log.acknowledge("no:such:problem")
    assert state(log, problem.fingerprint) == (ACKNOWLEDGED, 1)
    judge(log, policy, "2026-11-11", [])                              # one healthy window is not recovery
    assert state(log, problem.fingerprint) == (ACKNOWLEDGED, 1)
    judge(log, policy, "2026-11-11", [])                              # nor is its rerun
    assert state(log, problem.fingerprint) == (ACKNOWLEDGED, 1)
    judge(log, policy, "2026-11-12", [])                              # two are (lifecycle.resolve_after_windows)
    assert state(log, problem.fingerprint) == (RESOLVED, 1)
    judge(log, policy, "2026-11-10", [problem], latest=False)         # an older window, refreshed
    assert state(log, problem.fingerprint) == (RESOLVED, 1)
    judge(log, policy, "2026-11-13", [alert(1, "critical", window="2026-11-13")])   # back within 7 days
    assert state(log, problem.fingerprint) == (REOPENED, 2)


def test_a_recurrence_after_the_reopen_window_is_a_new_incident(log, policy):
    judge(log, policy, "2026-11-01", [alert(1, "critical", window="2026-11-01")])
    judge(log, policy, "2026-11-02", [])
    judge(log, policy, "2026-11-03", [])
    plans = judge(log, policy, "2026-11-20", [alert(1, "critical", window="2026-11-20")])
    first, second = alert(1).fingerprint, alert(1).fingerprint + "#2"
    assert state(log, first) == (RESOLVED, 1) and state(log, second) == (OPEN, 1)
    assert set(plans) == {second}
    assert {a.fingerprint for a in log.window_alerts("churn-eu", "2026-11-20")} == {second}


def test_recovery_tells_every_channel_that_heard_of_the_problem(log, policy):
    problem = alert(1, "critical")
    judge(log, policy, "2026-11-10", [problem])
    judge(log, policy, "2026-11-11", [])
    judge(log, policy, "2026-11-12", [])
    judge(log, policy, "2026-11-12", [])                              # a rerun resolves nothing twice
    resolved = [r for r in log.outbox.rows() if r["event"] == "resolved"]
    assert sorted(r["channel"] for r in resolved) == ["jira-mlops", "outbox", "servicenow", "slack-ml-platform"]
    assert resolved[0]["payload"]["summary"].startswith("Resolved: churn-eu v3 has shown no data drift in the 2 ")


def test_an_older_window_resolves_nothing(log, policy):
    problem = alert(1, "critical")
    judge(log, policy, "2026-11-10", [problem])
    judge(log, policy, "2026-11-09", [], latest=False)
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
    judge(log, policy, "2026-11-10", [alert(1, "critical"), alert(2, "critical")])
    assert log.acknowledge(alert(1).fingerprint)
    for day in ("2026-11-11", "2026-11-12"):                          # problem 2 went away
        judge(log, policy, day, [alert(1, "critical", window=day)])
    assert state(log, alert(2).fingerprint)[0] == RESOLVED
    clock.t += 5 * 3600
    assert log.sweep(policy) == 0


def test_three_incidents_with_one_cause_raise_one_problem_record(log, policy):
    """One model's performance fails in three versions: three incidents, one problem record."""
    from watchkeeper.alerting.builder import build_alerts
    from watchkeeper.problems import ANY_VERSION

    reason = [{"signal": "performance", "detail": "accuracy down", "metric": "accuracy", "value": 0.7,
               "lower": 0.66, "upper": 0.74, "reference": 0.9}]
    for version, day in (("1", "2026-11-01"), ("2", "2026-11-05"), ("3", "2026-11-09"), ("4", "2026-11-12")):
        judge(log, policy, day, build_alerts("churn-eu", version, day, "binary", "degraded", reason, {}),
              version=version)
    records = [p for p in log.problems("churn-eu") if p.record == "problem"]
    assert [(p.fingerprint, p.version, p.first_window) for p in records] == [
        (fingerprint("churn-eu", ANY_VERSION, "performance"), ANY_VERSION, "2026-11-09")]
    assert "3 incidents of performance for model churn-eu" in records[0].alert.summary
    queued = {r["channel"] for r in log.outbox.rows() if r["fingerprint"] == records[0].fingerprint}
    assert {"jira-mlops", "servicenow"} <= queued


def test_a_rolled_back_transaction_leaves_no_problem_and_no_notification(log, store, policy):
    """The verdict's transaction: when anything in it fails, the problem and its rows are not there."""
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.put_health("churn-eu", "2026-11-10", "3", "drifted", [], tx=tx)
        log.record("churn-eu", "3", "2026-11-10", [alert()], policy, tx=tx)
        raise RuntimeError("killed before commit")
    assert log.problems() == [] and log.outbox.rows() == [] and store.latest_window("churn-eu") is None


def test_one_fingerprint_function():
    assert fingerprint("churn eu", "3", "performance") == "churn eu:3:performance"
    assert fingerprint("churn eu", "3", "performance", episode=2) == "churn eu:3:performance#2"
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
    plans = judge(log, policy, "2026-11-10", alerts)
    assert {fp: sorted(d.channel for d in plan.dispatches) for fp, plan in plans.items()} == {
        "churn-eu:3:data_drift": ["outbox", "slack-ml-platform"],
        "churn-eu:3:concept_drift": ["jira-mlops", "outbox", "servicenow", "slack-ml-platform"],
        "churn-eu:3:performance": ["jira-mlops", "outbox", "servicenow", "slack-ml-platform"]}
    assert len(log.outbox.rows(PENDING)) == 10


def test_a_concept_drift_alert_carries_the_detector_the_error_rates_and_the_segments():
    from watchkeeper.alerting.channels.content import plain_text
    from watchkeeper.concept import AUTO, label_alarms, with_error_rates

    errors = [0] * 600 + [1] * 400
    [alarm] = with_error_rates(label_alarms([1500], 900, [f"p{i}" for i in range(1000)],
                                            [f"t{i}" for i in range(1000)]), errors, 900, AUTO, span=100)
    assert (alarm["detector"], alarm["error_rate_before"], alarm["error_rate_after"]) == (
        "adwin (auto: delta 0.01, clock 1)", 0.0, 1.0)
    reasons = [{"signal": "concept_drift", "detail": "1 stream detector alarm(s) on the prediction errors",
                "alarms": [alarm]},
               {"signal": "root_cause", "detail": "the relation changed", "features": [],
                "segments": [{"segment": "sex=F", "delta": -0.21}, {"segment": "sex=M", "delta": -0.02}]}]
    [built] = build_alerts("churn", "3", "2026-11-10", "binary", "degraded", reasons, {})
    assert built.kind == "concept_drift" and built.alarms[0]["error_rate_after"] == 1.0
    assert [s["segment"] for s in built.segments] == ["sex=F", "sex=M"]
    text = plain_text(built)
    assert "* alarm 1: adwin (auto: delta 0.01, clock 1) at t600 (index 1500): error rate 0 -> 1" in text
    assert "Affected segments:\n* sex=F: Δ -0.21 vs reference" in text


def test_alert_links_are_absolute_from_the_configured_bases_or_absent():
    assert alert_links("http://127.0.0.1:3001/", "r 1", "https://mlflow.example.com", "churn eu", "3") == {
        "dagster_run": "http://127.0.0.1:3001/runs/r%201", "dagster_asset": "http://127.0.0.1:3001/assets/model_health",
        "mlflow_model_version": "https://mlflow.example.com/#/models/churn%20eu/versions/3"}
    assert alert_links("/dagster", "r1", "", "churn", "3") == {}          # never a relative link
