"""One incident lifecycle against the local stand-in Jira and ServiceNow, through the real clients:
acknowledging a ticket stops escalation, recovery resolves it with a comment, a recurrence reopens
it, three incidents with one cause raise one problem record, and approving a change request
promotes the challenger, which the registry sensor then profiles (real MLflow, real Dagster)."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from standins import JiraStandin, ServiceNowStandin
from test_outbox import Clock
from test_retraining import DAYS, MODEL, aliases, empty_mlflow_db, tracking_uri, world  # noqa: F401 (fixtures)
from watchkeeper.alerting.builder import build_alerts
from watchkeeper.alerting.outbox import Sender
from watchkeeper.alerting.policy import parse_policy
from watchkeeper.problems import ACKNOWLEDGED, ANY_VERSION, PROMOTION, REOPENED, RESOLVED, ProblemLog, fingerprint
from watchkeeper.security.audit import PROBLEM_ACKNOWLEDGED, PROBLEM_RESOLVED, PROMOTED as PROMOTED_ENTRY
from watchkeeper.store import MonitoringStore
from watchkeeper.ticket_sync import sync_tickets

JIRA_TOKEN, SN_USER, SN_PASSWORD = "jira-standin-token", "watchkeeper.integration", "sn-standin-password"
DEGRADED = [{"signal": "performance", "detail": "accuracy 0.70 is below the reference 0.90", "metric": "accuracy",
             "value": 0.7, "lower": 0.66, "upper": 0.74, "reference": 0.9}]


@pytest.fixture
def systems(monkeypatch):
    monkeypatch.setenv("JIRA_API_TOKEN", JIRA_TOKEN)
    monkeypatch.setenv("SERVICENOW_USER", SN_USER)
    monkeypatch.setenv("SERVICENOW_PASSWORD", SN_PASSWORD)
    with JiraStandin(token=JIRA_TOKEN, user="bot@example.com") as jira, ServiceNowStandin(SN_USER, SN_PASSWORD) as sn:
        yield jira, sn


def policy_for(jira: JiraStandin, sn: ServiceNowStandin):
    return parse_policy({
        "version": 1,
        "channels": {
            "jira": {"type": "jira", "server": jira.url, "project": "OPS", "user": "bot@example.com",
                     "allow_http_loopback": True},
            "servicenow": {"type": "servicenow", "instance_url": sn.url, "allow_http_loopback": True},
            "leads": {"type": "outbox"}},
        "routes": [{"match": {"min_severity": "critical"}, "to": ["jira", "servicenow"]},
                   {"match": {"kind": "promotion_approval"}, "to": ["jira", "servicenow"]}],
        "escalation": {"unacknowledged_for": "4h", "to": ["leads"]},
        "lifecycle": {"resolve_after_windows": 2, "reopen_within": "7d", "problem_after_incidents": 3}})


@pytest.fixture
def rig(systems, tmp_path):
    jira, sn = systems
    clock = Clock()
    log = ProblemLog(MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), clock=clock)
    policy = policy_for(jira, sn)
    yield jira, sn, log, policy, clock
    log.store.engine.dispose()


def judge(log: ProblemLog, policy, day: str, degraded: bool, version: str = "3") -> None:
    """model_health's verdict for one window of churn-eu, with its problems, in one transaction."""
    alerts = build_alerts("churn-eu", version, day, "binary", "degraded" if degraded else "ok",
                          DEGRADED if degraded else [], {})
    with log.store.transaction() as tx:
        log.store.put_health("churn-eu", day, version, "degraded" if degraded else "ok", [], tx=tx)
        log.record("churn-eu", version, day, alerts, policy, tx=tx)


def deliver(log: ProblemLog, policy) -> None:
    stats = Sender(log.outbox, policy.build_channels()).run_once()
    assert stats.dead == stats.retried == 0, log.outbox.rows("dead") + log.outbox.rows("pending")


INCIDENT = fingerprint("churn-eu", "3", "performance")


@pytest.mark.parametrize("who", ["jira", "servicenow", None])
def test_acknowledging_the_ticket_stops_escalation(rig, who):
    jira, sn, log, policy, clock = rig
    judge(log, policy, "2026-11-10", degraded=True)
    deliver(log, policy)
    [issue], [incident] = jira.issues, sn.incidents
    if who == "jira":
        jira.assign(issue["key"])
    elif who == "servicenow":
        sn.set_state(incident["number"], "2")                       # In Progress
    result = sync_tickets(log, policy.build_channels())
    assert result.acknowledged == ([INCIDENT] if who else []) and not result.errors
    ticket = {"jira": issue["key"], "servicenow": incident["number"]}.get(who)
    assert [(e.subject, e.actor) for e in log.store.audit_entries(PROBLEM_ACKNOWLEDGED)] == (
        [(INCIDENT, f"ticket {ticket}")] if who else [])
    clock.t += 5 * 3600                                             # past unacknowledged_for
    assert log.sweep(policy) == (0 if who else 1)
    assert [p.state for p in log.problems()] == [ACKNOWLEDGED if who else "open"]


def test_a_ticketing_system_that_is_down_is_reported_and_the_other_is_read(rig):
    jira, sn, log, policy, _ = rig
    judge(log, policy, "2026-11-10", degraded=True)
    deliver(log, policy)
    sn.assign(sn.incidents[0]["number"])
    jira.down()
    result = sync_tickets(log, policy.build_channels())
    assert result.acknowledged == [INCIDENT]
    assert list(result.errors) == [f"{INCIDENT} @ jira"] and "Jira: connection failed" in result.errors[f"{INCIDENT} @ jira"]


def test_recovery_resolves_the_ticket_with_a_comment_and_a_recurrence_reopens_it(rig):
    jira, sn, log, policy, _ = rig
    judge(log, policy, "2026-11-10", degraded=True)
    deliver(log, policy)
    judge(log, policy, "2026-11-11", degraded=False)
    deliver(log, policy)
    assert jira.issues[0]["status_category"] == "new"              # one healthy window is not recovery
    judge(log, policy, "2026-11-12", degraded=False)
    deliver(log, policy)
    [issue], [incident] = jira.issues, sn.incidents
    assert issue["fields"]["status"]["name"] == "Done"
    assert "Resolved: churn\\-eu v3 has shown no performance in the 2 windows" in issue["comments"][-1]["body"]
    assert (incident["state"], incident["active"], incident["close_code"]) == ("6", "false", "Solution provided")
    assert incident["close_notes"].startswith("Resolved: churn-eu v3 has shown no performance in the 2 windows")
    assert [p.state for p in log.problems()] == [RESOLVED]
    [resolved] = log.store.audit_entries(PROBLEM_RESOLVED)
    assert (resolved.subject, resolved.partition, resolved.details["healthy_windows"]) == (INCIDENT, "2026-11-12", 2)

    judge(log, policy, "2026-11-15", degraded=True)                 # back within reopen_within (7d)
    deliver(log, policy)
    [issue], [incident] = jira.issues, sn.incidents                 # the same ticket, not a new one
    assert issue["status_category"] == "new" and "window 2026\\-11\\-15" in issue["comments"][-1]["body"]
    assert (incident["state"], incident["active"]) == ("1", "true")
    assert "window 2026-11-15" in incident["work_notes"][-1]
    assert [(p.fingerprint, p.state) for p in log.problems()] == [(INCIDENT, REOPENED)]

    for day in ("2026-11-16", "2026-11-17"):
        judge(log, policy, day, degraded=False)
    judge(log, policy, "2026-12-01", degraded=True)                 # later than that: a new incident
    deliver(log, policy)
    assert len(jira.issues) == len(sn.incidents) == 2
    assert jira.issues[0]["status_category"] == "done" and jira.issues[1]["status_category"] == "new"


def test_three_incidents_with_one_cause_raise_one_problem_record(rig):
    jira, sn, log, policy, _ = rig
    for version, day in (("1", "2026-11-01"), ("2", "2026-11-05"), ("3", "2026-11-09"), ("4", "2026-11-12")):
        judge(log, policy, day, degraded=True, version=version)
        deliver(log, policy)
    types = [i["fields"]["issuetype"]["name"] for i in jira.issues]
    assert types == ["Bug", "Bug", "Bug", "Problem", "Bug"]
    [problem_record] = sn.records("problem")
    assert len(sn.incidents) == 4
    assert problem_record["short_description"] == "churn-eu: recurring performance (3 incidents)"
    assert "churn-eu:1:performance (from 2026-11-01)" in problem_record["description"]
    cause = fingerprint("churn-eu", ANY_VERSION, "performance")
    assert {p.fingerprint for p in log.problems() if p.record == "problem"} == {cause}
    jira.resolve(jira.issues[3]["key"])                               # its owners removed the cause
    assert sync_tickets(log, policy.build_channels()).resolved == [cause]
    assert [p.state for p in log.problems() if p.record == "problem"] == [RESOLVED]
    assert [(e.subject, e.actor) for e in log.store.audit_entries(PROBLEM_RESOLVED)] == [
        (cause, f"ticket {jira.issues[3]['key']}")]


@pytest.mark.parametrize("approver", ["jira", "servicenow", "cli"])
def test_approving_the_change_request_promotes_the_challenger_and_the_registry_sensor_profiles_it(
        world, systems, tmp_path, approver):  # noqa: F811 (world is a fixture)
    from cli.main import main
    from definitions import defs
    from monitoring_assets.reference import reference_profile
    from resources import (
        AlertingResource, FeastResource, MlflowRegistryResource, MonitoringConfigResource, MonitoringStoreResource,
    )
    from sensors.registry import registry_sensor
    from sensors.ticket_sync import ticket_sync_sensor
    from watchkeeper.retraining.approval import approval_alert
    from watchkeeper.retraining.cycle import RetrainPolicy, run_retraining
    from watchkeeper.retraining.gate import NEEDS_APPROVAL

    registry, _, drop, _ = world
    jira, sn = systems
    outcome = run_retraining(registry, drop, MODEL, DAYS, RetrainPolicy(approval="ticket", margin=0.05))
    assert outcome.final.status == NEEDS_APPROVAL and aliases(registry)["champion"] == "1"
    version, store_url = outcome.final.challenger.version, f"sqlite:///{tmp_path / 'monitoring.db'}"
    policy_file = tmp_path / "alerting.json"
    policy_file.write_text(json.dumps({
        "version": 1,
        "channels": {"jira": {"type": "jira", "server": jira.url, "project": "OPS", "user": "bot@example.com",
                              "allow_http_loopback": True},
                     "servicenow": {"type": "servicenow", "instance_url": sn.url, "allow_http_loopback": True}},
        "routes": [{"match": {"kind": "promotion_approval"}, "to": ["jira", "servicenow"]}]}))
    alerting = AlertingResource(policy_path=str(policy_file), dagster_url="http://dagster.test",
                                mlflow_url="http://mlflow.test")
    log = ProblemLog(MonitoringStore(store_url))
    policy = alerting.policy()
    log.record(MODEL, version, DAYS[-1], [approval_alert(MODEL, version, DAYS[-1], outcome.final.decision.reason,
                                                         {})], policy, latest=False, verdict=False)
    deliver(log, policy)
    [issue], [change] = jira.issues, sn.records("change_request")
    assert issue["fields"]["issuetype"] == {"name": "Change"} and change["approval"] == "requested"

    resources = {"monitoring_store": MonitoringStoreResource(url=store_url), "alerting": alerting,
                 "mlflow_registry": MlflowRegistryResource(tracking_uri=registry.tracking_uri)}
    with dg.instance_for_test() as instance:
        def tick(sensor, cursor=None):
            with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                                         resources=resources) as context:
                return sensor.evaluate_tick(context)

        assert tick(ticket_sync_sensor).skip_message == "acknowledged 0, approved 0, resolved 0, unread 0"
        if approver == "jira":
            jira.set_status(issue["key"], "Approved")
        elif approver == "servicenow":
            sn.approve(change["number"])
        else:
            assert main(["approve", "--model", MODEL, "--version", version, "--tracking-uri",
                         registry.tracking_uri, "--store-url", store_url, "--by", "alice"]) == 0
        synced = tick(ticket_sync_sensor)
        assert synced.skip_message == f"acknowledged 0, approved {int(approver != 'cli')}, resolved 0, unread 0"
        assert aliases(registry) == {"champion": version, "previous_champion": "1"}

        deliver(log, policy)                                        # the change's tickets are told and closed
        assert jira.issues[0]["status_category"] == "done" and "is now the champion" in jira.issues[0]["comments"][-1]["body"]
        assert sn.records("change_request")[0]["state"] == "3"
        assert [p.state for p in log.problems(MODEL)] == [RESOLVED]
        who = {"jira": f"ticket {issue['key']}", "servicenow": f"ticket {change['number']}"}.get(approver, "alice")
        [promoted] = log.store.audit_entries(PROMOTED_ENTRY)
        assert (promoted.actor, promoted.details) == (who, {"version": version, "replaces": "1", "approved_by": who})
        assert [(e.subject, e.actor) for e in log.store.audit_entries(PROBLEM_RESOLVED)] == [
            (fingerprint(MODEL, version, PROMOTION), who)]
        assert log.store.verify_audit()[1] is None

        seen = tick(registry_sensor, cursor=json.dumps({"versions": {MODEL: "1"}}))
        assert [(r.partition_key, r.run_key) for r in seen.run_requests] == [(MODEL, f"{MODEL}:{version}")]
        instance.add_dynamic_partitions("models", [MODEL])
        result = dg.materialize([reference_profile], partition_key=MODEL, instance=instance,
                                resources={"monitoring_config": MonitoringConfigResource(path=""),
                                           "feature_store": FeastResource(),
                                           **{k: resources[k] for k in ("monitoring_store", "mlflow_registry")}})
        assert result.success
    assert log.store.latest_profiles()[MODEL].version == version
    assert main(["approve", "--model", MODEL, "--version", version, "--tracking-uri", registry.tracking_uri,
                 "--store-url", store_url]) == 2                 # approved once only


def test_approve_refuses_what_is_not_waiting_for_approval_in_one_line(tracking_uri, tmp_path, capsys,  # noqa: F811
                                                                       monkeypatch):
    from cli.main import main

    monkeypatch.delenv("WATCHKEEPER_MLFLOW_URI", raising=False)
    monkeypatch.delenv("WATCHKEEPER_STORE_URL", raising=False)
    store = f"sqlite:///{tmp_path / 'monitoring.db'}"
    cases = [(["--model", "churn", "--version", "1"], "pass --tracking-uri and --store-url"),
             (["--model", "churn", "--version", "1", "--tracking-uri", tracking_uri, "--store-url", store],
              "churn v1: Model Version (name=churn, version=1) not found"),
             (["--model", "churn", "--version", "x1", "--tracking-uri", tracking_uri, "--store-url", store],
              "churn vx1: Parameter 'version' must be an integer")]
    for argv, words in cases:
        assert main(["approve", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
