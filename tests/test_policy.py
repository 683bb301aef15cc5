"""The routing policy: the checked-in example's decisions, and one-line errors for bad files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watchkeeper.alerting.policy import Dispatch, PolicyError, load_policy
from watchkeeper.alerting.record import AlertRecord

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "alerting.yaml"
LONDON = ZoneInfo("Europe/London")
NOON = datetime(2026, 11, 10, 12, 0, tzinfo=LONDON)
NIGHT = datetime(2026, 11, 10, 23, 30, tzinfo=LONDON)


@pytest.fixture(scope="module")
def policy():
    return load_policy(EXAMPLE)


def alert(model: str = "churn-eu", severity: str = "warning", kind: str = "data_drift", occurrence: int = 1) -> AlertRecord:
    return AlertRecord(fingerprint=f"{model}:3:{kind}", model=model, version="3", window="2026-11-10",
                       severity=severity, kind=kind, title="t", summary="s", occurrence=occurrence)


def plan(policy, a: AlertRecord, now: datetime, last_sent=None, first_seen=None, acknowledged=False, tags=None):
    return policy.plan(a, now.astimezone(timezone.utc), first_seen or now, acknowledged, last_sent or {}, tags)


# --- routing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("model, severity, tags, expected", [
    ("churn-eu", "warning", None, ["outbox", "slack-ml-platform"]),
    ("churn-eu", "critical", None, ["outbox", "slack-ml-platform", "jira-mlops", "servicenow"]),
    ("churn-eu", "info", None, ["outbox"]),
    ("credit-score", "warning", None, ["outbox"]),
    ("credit-score", "critical", None, ["outbox", "jira-mlops", "servicenow"]),
    ("credit-score", "warning", {"team": "ml-platform"}, ["outbox", "slack-ml-platform"]),  # the MLflow tag wins
])
def test_routes_by_team_and_severity(policy, model, severity, tags, expected):
    assert policy.route(alert(model, severity), tags) == expected


def test_routes_match_model_globs_tags_and_kinds(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(BASE + """
  - match: {model: ["fraud-*"], tags: {tier: gold}, kind: [performance, concept_drift]}
    to: [pager]
""")
    policy = load_policy(path)
    gold = {"tier": "gold"}
    assert policy.route(alert("fraud-us", "warning", "performance"), gold) == ["outbox", "pager"]
    assert policy.route(alert("fraud-us", "warning", "data_drift"), gold) == ["outbox"]
    assert policy.route(alert("fraud-us", "warning", "performance"), {"tier": "bronze"}) == ["outbox"]
    assert policy.route(alert("churn", "warning", "performance"), gold) == ["outbox"]


# --- cooldown ----------------------------------------------------------------------------------

def test_cooldown_holds_a_repeat_until_it_elapses(policy):
    a, morning = alert(occurrence=2), datetime(2026, 11, 10, 8, 0, tzinfo=LONDON)
    sent = morning.astimezone(timezone.utc)
    within = plan(policy, a, morning + timedelta(hours=11), {"outbox": sent, "slack-ml-platform": sent})
    assert within.dispatches == () and set(within.held) == {"outbox", "slack-ml-platform"}
    # Slack's route has a 12h cooldown, the outbox the policy's 24h.
    after_slack = plan(policy, a, morning + timedelta(hours=13), {"outbox": sent, "slack-ml-platform": sent})
    assert after_slack.dispatches == (Dispatch("slack-ml-platform"),)
    assert after_slack.held["outbox"].startswith("cooldown until")


def test_a_problem_turning_critical_reaches_the_new_channels_at_once(policy):
    sent = NOON.astimezone(timezone.utc)
    p = plan(policy, alert(severity="critical", occurrence=2), NOON + timedelta(hours=1),
             {"outbox": sent, "slack-ml-platform": sent})
    assert [d.channel for d in p.dispatches] == ["jira-mlops", "servicenow"]


# --- escalation --------------------------------------------------------------------------------

@pytest.mark.parametrize("occurrence, age, acknowledged, severity, escalates", [
    (2, timedelta(hours=1), False, "warning", False),
    (3, timedelta(hours=1), False, "warning", True),        # persisted for 3 windows
    (3, timedelta(hours=1), True, "warning", True),         # acknowledging does not undo persistence
    (1, timedelta(hours=5), False, "critical", True),       # ticket unacknowledged for 4h
    (1, timedelta(hours=5), True, "critical", False),
    (1, timedelta(hours=3), False, "critical", False),
    (5, timedelta(days=2), False, "info", False),           # below the escalation's min_severity
])
def test_escalation_after_windows_or_unacknowledged_time(policy, occurrence, age, acknowledged, severity, escalates):
    a = alert(severity=severity, occurrence=occurrence)
    got = policy.escalation(a, occurrence, NOON - age, acknowledged, NOON)
    assert got == (["teams-ml-leads"] if escalates else [])


def test_escalation_joins_the_plan_once_then_follows_the_cooldown(policy):
    first = plan(policy, alert(occurrence=3), NOON)
    assert "teams-ml-leads" in [d.channel for d in first.dispatches]
    sent = {c: NOON.astimezone(timezone.utc) for c in ("outbox", "slack-ml-platform", "teams-ml-leads")}
    assert plan(policy, alert(occurrence=4), NOON + timedelta(hours=2), sent).dispatches == ()


# --- quiet hours -------------------------------------------------------------------------------

def test_night_delays_warnings_in_chat_until_seven_local_time(policy):
    p = plan(policy, alert(severity="warning"), NIGHT)
    morning = datetime(2026, 11, 11, 7, 0, tzinfo=LONDON)
    assert p.dispatches == (Dispatch("outbox"), Dispatch("slack-ml-platform", morning))
    after_midnight = plan(policy, alert(severity="warning"), datetime(2026, 11, 11, 3, 0, tzinfo=LONDON))
    assert after_midnight.dispatches[1].not_before == morning


def test_critical_is_never_quieted_and_days_are_not_quiet(policy):
    night = plan(policy, alert(severity="critical"), NIGHT)
    assert all(d.not_before is None for d in night.dispatches) and len(night.dispatches) == 4
    assert all(d.not_before is None for d in plan(policy, alert(severity="warning"), NOON).dispatches)
    seven = datetime(2026, 11, 11, 7, 0, tzinfo=LONDON)                 # the end is not quiet any more
    assert all(d.not_before is None for d in plan(policy, alert(), seven).dispatches)


def test_suppress_drops_the_channel_and_says_why(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(BASE + """
quiet_hours:
  - {name: weekend-ops, start: "20:00", end: "08:00", timezone: UTC, severities: [info], action: suppress}
""")
    p = load_policy(path).plan(alert(severity="info"), datetime(2026, 11, 10, 21, tzinfo=timezone.utc),
                               NOON, False, {})
    assert p.dispatches == () and p.held == {"outbox": "quiet hours 'weekend-ops'"}


# --- validation --------------------------------------------------------------------------------

BASE = """\
version: 1
channels:
  outbox: {type: outbox}
  pager: {type: teams, url_env: PAGER_URL}
teams:
  ml-platform: ["churn-*"]
routes:
  - to: [outbox]
"""


@pytest.mark.parametrize("extra, message", [
    ("rouets: []\n", "policy: unknown key 'rouets' (allowed: channels, cooldown, escalation, lifecycle, quiet_hours, routes, teams, version)"),
    ("  - {match: {min_severity: warning}, to: [pagerduty]}\n", "routes[1].to: unknown channel 'pagerduty' (declared: outbox, pager)"),
    ("  - {to: [pager], cooldown: 2 hours}\n", "routes[1].cooldown: bad duration '2 hours' (use e.g. 30m, 2h, 1d or 1h30m)"),
    ("  - {to: [pager], cooldown: 0m}\n", "routes[1].cooldown: duration '0m' is zero"),
    ("  - {match: {min_severity: urgent}, to: [pager]}\n", "routes[1].match.min_severity: unknown severity 'urgent' (one of info, warning, critical)"),
    ("  - {match: {sevrity: critical}, to: [pager]}\n", "routes[1].match: unknown key 'sevrity'"),
    ("  - {match: {team: ml-platfrom}, to: [pager]}\n", "routes[1].match.team: unknown team 'ml-platfrom' (declared under teams: ml-platform)"),
    ("  - {match: {kind: drift}, to: [pager]}\n", "routes[1].match.kind: unknown kind 'drift'"),
    ("  - {match: {model: churn}}\n", "routes[1]: missing key 'to'"),
    ("cooldown: 30\n", "cooldown: bad duration 30"),
    ("escalation: {to: [pager]}\n", "escalation: give after_windows, unacknowledged_for or both"),
    ("escalation: {to: [pager], after_windows: 0}\n", "escalation.after_windows: expected a whole number of windows >= 1, got 0"),
    ("escalation: {to: [pager], unacknowledged_for: 4 hours}\n", "escalation.unacknowledged_for: bad duration '4 hours'"),
    ("quiet_hours:\n  - {start: '22:00', end: '07:00', timezone: UTC, severities: [warning, critical]}\n",
     "quiet_hours[0].severities: critical alerts are never quieted"),
    ("quiet_hours:\n  - {start: 22:00, end: '07:00', timezone: UTC, severities: [warning]}\n",
     "quiet_hours[0].start: bad time of day 1320 (use 'HH:MM' in quotes"),
    ("quiet_hours:\n  - {start: '22:00', end: '07:00', timezone: Mars/Olympus, severities: [info]}\n",
     "quiet_hours[0].timezone: unknown time zone 'Mars/Olympus'"),
    ("quiet_hours:\n  - {start: '22:00', end: '07:00', timezone: UTC, severities: [info], action: drop}\n",
     "quiet_hours[0].action: unknown action 'drop' (one of delay, suppress)"),
])
def test_each_mistake_is_one_line_naming_the_file_and_path(tmp_path, extra, message):
    path = tmp_path / "alerting.yaml"
    path.write_text(BASE + extra)
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"{path}: {message}"), text


@pytest.mark.parametrize("text, message", [
    ("version: 1\nchannels: {outbox: {type: outbox}}\nroutes: [{to: [outbox]}\n", "not valid YAML: line 4"),
    ("version: 2\nchannels: {outbox: {type: outbox}}\nroutes: [{to: [outbox]}]\n", "version: unsupported version 2"),
    ("version: 1\nchannels: {outbox: {kind: outbox}}\nroutes: [{to: [outbox]}]\n", "channels.outbox: expected a mapping with a `type`"),
    ("version: 1\nchannels: {outbox: {type: outbox}}\nroutes: []\n", "routes: at least one route is needed"),
    ("- just a list\n", "policy: expected a mapping, got list"),
    ("version: 1\nchannels: {pager: {type: pagerduty}}\nroutes: [{to: [pager]}]\n",
     "channels.pager: unknown channel type 'pagerduty' (available: slack, teams, jira, servicenow"),
    ("version: 1\nchannels: {chat: {type: slack, chanel_id: C1}}\nroutes: [{to: [chat]}]\n",
     "channels.chat: SlackChannel.__init__() got an unexpected keyword argument 'chanel_id'"),
    ("version: 1\nchannels: {local: {type: outbox, table: x}}\nroutes: [{to: [local]}]\n",
     "channels.local: OutboxChannel.__init__() got an unexpected keyword argument 'table'"),
])
def test_broken_documents_fail_in_one_line(tmp_path, text, message):
    path = tmp_path / "alerting.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"^[^\n]*$") as error:
        load_policy(path)
    assert str(error.value).startswith(f"{path}: {message}"), error.value


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(PolicyError, match=r"alerting.yaml: cannot read: No such file or directory$"):
        load_policy(tmp_path / "alerting.yaml")


def test_the_example_declares_what_the_docs_promise(policy):
    assert policy.escalation_rule.after_windows == 3
    [night] = policy.quiet_hours
    assert (str(night.start), str(night.end), night.severities) == ("22:00:00", "07:00:00", ("info", "warning"))
    assert {c.type for c in policy.channels.values()} == {"outbox", "slack", "jira", "servicenow", "teams"}
