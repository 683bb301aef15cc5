"""Channels driven through their real clients (slack_sdk, requests, jira) against local stand-ins.

Each channel is checked for what it posts, for idempotency by fingerprint (a second send
updates, a retry after a lost answer does not duplicate), for how each failure becomes a
ChannelError (429 + Retry-After, 5xx, timeout, refused connection, 4xx), and for keeping
its secrets out of request bodies, exceptions and logs.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from standins import JiraStandin, ServiceNowStandin, SlackStandin, Standin, TeamsStandin

from watchkeeper.alerting.channels import (
    CHANNEL_TYPES, JiraChannel, ServiceNowChannel, SlackChannel, TeamsChannel, available_channel_types, load_channel)
from watchkeeper.alerting.channels.errors import parse_retry_after
from watchkeeper.alerting.channels.fingerprint import fingerprint_key
from watchkeeper.alerting.channels.jira_channel import wiki_escape
from watchkeeper.alerting.channels.severity import PRIORITY_MATRIX, itil_fields
from watchkeeper.alerting.record import AlertRecord, ChannelError

SLACK_TOKEN = "xoxb-SECRET-slack-4b1d"
TEAMS_SIG = "SECRET-teams-sig-9c2e"
JIRA_TOKEN = "SECRET-jira-token-77aa"
SN_PASSWORD = "SECRET-sn-password-31f0"
TIMEOUT = 0.75    # seconds: channels under test; stand-ins answer late by LATE
LATE = 1.5


def make_alert(**changes) -> AlertRecord:
    alert = AlertRecord(
        fingerprint="churn:3:performance", model="churn", version="3", window="2026-11-08",
        severity="critical", kind="performance", title="churn v3: performance degradation (critical)",
        summary="binary model churn v3, window 2026-11-08: auc fell below its interval",
        features=[{"name": "income", "test": "ks", "statistic": 0.2134, "p_value": 3.1e-08,
                   "effect_size": 0.34, "effect_metric": "psi"},
                  {"name": "region", "test": "chi2", "statistic": 41.5, "p_value": 2.2e-4,
                   "effect_size": 0.12, "effect_metric": "jensen_shannon"}],
        metrics=[{"name": "auc", "value": 0.812, "lower": 0.79, "upper": 0.834, "reference": 0.873, "delta": -0.061}],
        links={"dagster_run": "http://dagster.test/runs/r1", "mlflow_model_version": "http://mlflow.test/#/models/churn/versions/3"},
    )
    return dataclasses.replace(alert, **changes)


# A rig: one stand-in, the channel pointed at it, its secrets, and how to count what it created.
@dataclass
class Rig:
    standin: Standin
    channel: object
    secrets: tuple[str, ...]
    created: Callable[[], int]


def _slack(monkeypatch) -> Iterator[Rig]:
    with SlackStandin(token=SLACK_TOKEN) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
        yield Rig(slack, SlackChannel("C0ALERTS", base_url=slack.api_url, timeout=TIMEOUT, allow_http_loopback=True), (SLACK_TOKEN,),
                  lambda: len(slack.messages))


def _teams(monkeypatch) -> Iterator[Rig]:
    with TeamsStandin(sig=TEAMS_SIG) as teams:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.webhook_url)
        yield Rig(teams, TeamsChannel(timeout=TIMEOUT, allow_http_loopback=True), (TEAMS_SIG,), lambda: len(teams.cards))


def _jira(deployment: str):
    def rig(monkeypatch) -> Iterator[Rig]:
        with JiraStandin(token=JIRA_TOKEN, user="bot@example.com", deployment=deployment) as jira:
            monkeypatch.setenv("JIRA_API_TOKEN", JIRA_TOKEN)
            basic = base64.b64encode(f"bot@example.com:{JIRA_TOKEN}".encode()).decode()
            yield Rig(jira, JiraChannel(jira.url, "OPS", user="bot@example.com", timeout=TIMEOUT, allow_http_loopback=True),
                      (JIRA_TOKEN, basic), lambda: len(jira.issues))
    return rig


def _servicenow(monkeypatch) -> Iterator[Rig]:
    with ServiceNowStandin(password=SN_PASSWORD) as sn:
        monkeypatch.setenv("SERVICENOW_USER", sn.user)
        monkeypatch.setenv("SERVICENOW_PASSWORD", SN_PASSWORD)
        basic = base64.b64encode(f"{sn.user}:{SN_PASSWORD}".encode()).decode()
        yield Rig(sn, ServiceNowChannel(sn.url, timeout=TIMEOUT, allow_http_loopback=True), (SN_PASSWORD, basic), lambda: len(sn.incidents))


RIGS = {"slack": _slack, "teams": _teams, "jira_server": _jira("Server"), "jira_cloud": _jira("Cloud"),
        "servicenow": _servicenow}
# Channels that can find what they sent before (Teams webhooks cannot: see teams.py).
READABLE = ["slack", "jira_server", "jira_cloud", "servicenow"]


@pytest.fixture(params=list(RIGS))
def rig(request, monkeypatch) -> Iterator[Rig]:
    yield from RIGS[request.param](monkeypatch)


@pytest.fixture(params=READABLE)
def readable_rig(request, monkeypatch) -> Iterator[Rig]:
    yield from RIGS[request.param](monkeypatch)


def _rig(name: str, monkeypatch):
    """A rig as a context manager, for tests about one channel."""
    return contextmanager(RIGS[name])(monkeypatch)


def failure_of(channel, alert: AlertRecord) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(alert)
    return caught.value


# ---------------------------------------------------------------------------- failures

def test_429_gives_retry_after_from_the_header(rig):
    rig.standin.fail_next(1, status=429, retry_after=7)
    error = failure_of(rig.channel, make_alert())
    assert error.retry_after == 7 and not error.permanent
    assert "429" in str(error)
    rig.channel.send(make_alert())
    assert rig.created() == 1


def test_500_is_retryable(rig):
    rig.standin.fail_next(1, status=500)
    error = failure_of(rig.channel, make_alert())
    assert not error.permanent and error.retry_after is None
    assert "500" in str(error)


def test_timeout_is_retryable(rig):
    rig.standin.delay(LATE)
    error = failure_of(rig.channel, make_alert())
    assert not error.permanent and "no answer in time" in str(error)


def test_400_is_permanent(rig):
    rig.standin.fail_next(1, status=400)
    error = failure_of(rig.channel, make_alert())
    assert error.permanent and "400" in str(error)


def test_a_channel_down_for_a_while_delivers_once_it_is_back(rig):
    rig.standin.down(True)
    for _ in range(3):
        error = failure_of(rig.channel, make_alert())
        assert not error.permanent and "connection failed" in str(error)
    rig.standin.down(False)
    rig.channel.send(make_alert())
    assert rig.created() == 1


def test_a_missing_secret_is_permanent_and_names_the_variable(rig, monkeypatch):
    variable = {SlackChannel: "SLACK_BOT_TOKEN", TeamsChannel: "TEAMS_WEBHOOK_URL", JiraChannel: "JIRA_API_TOKEN",
                ServiceNowChannel: "SERVICENOW_PASSWORD"}[type(rig.channel)]
    monkeypatch.delenv(variable)
    error = failure_of(rig.channel, make_alert())
    assert error.permanent and variable in str(error)
    assert rig.standin.requests == []


def test_wrong_credentials_are_permanent(rig, monkeypatch):
    variable = {SlackChannel: "SLACK_BOT_TOKEN", JiraChannel: "JIRA_API_TOKEN",
                ServiceNowChannel: "SERVICENOW_PASSWORD"}.get(type(rig.channel))
    if variable:
        monkeypatch.setenv(variable, "wrong")
    else:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", rig.standin.webhook_url.replace(TEAMS_SIG, "wrong"))
    assert failure_of(rig.channel, make_alert()).permanent


def test_secrets_stay_out_of_bodies_exceptions_and_logs(rig, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    for status in (429, 500, 400, 401):
        rig.standin.fail_next(1, status=status, retry_after=3 if status == 429 else None)
        errors.append(failure_of(rig.channel, make_alert()))
    rig.standin.delay(LATE)
    errors.append(failure_of(rig.channel, make_alert()))
    rig.standin.delay(0)
    rig.standin.down(True)
    errors.append(failure_of(rig.channel, make_alert()))
    rig.standin.down(False)
    rig.channel.send(make_alert())
    rig.channel.send(make_alert(window="2026-11-09", occurrence=2))

    texts = [r.text for r in rig.standin.requests]
    texts += ["".join(traceback.format_exception(e)) + repr(e) for e in errors]
    texts += [record.getMessage() for record in caplog.records]
    assert any(record.name.startswith(("urllib3", "slack_sdk")) for record in caplog.records)  # logs were captured
    for secret in rig.secrets:
        assert not [t for t in texts if secret in t], f"a secret leaked: {secret[:8]}..."


# ---------------------------------------------------------------------------- idempotency

def test_second_send_with_the_same_fingerprint_updates(readable_rig):
    first = readable_rig.channel.send(make_alert())
    second = readable_rig.channel.send(make_alert(window="2026-11-09", occurrence=2))
    assert (first.action, second.action) == ("created", "updated")
    assert first.external_id == second.external_id and readable_rig.created() == 1


def test_a_retry_after_a_lost_answer_does_not_duplicate(readable_rig):
    create = {SlackStandin: ("POST", "chat.postMessage"), JiraStandin: ("POST", "/rest/api/2/issue"),
              ServiceNowStandin: ("POST", "/api/now/table/incident")}[type(readable_rig.standin)]
    readable_rig.standin.delay(LATE, *create)
    assert not failure_of(readable_rig.channel, make_alert()).permanent
    readable_rig.standin.delay(0)
    assert readable_rig.created() == 1          # the first attempt did land
    assert readable_rig.channel.send(make_alert()).action == "updated"
    assert readable_rig.created() == 1


def test_teams_retry_after_a_lost_answer_can_duplicate_unless_told_not_to(monkeypatch):
    """The documented gap of webhooks (teams.py): at-least-once by default, at-most-once on request."""
    with _rig("teams", monkeypatch) as rig:
        rig.standin.delay(LATE)
        assert not failure_of(rig.channel, make_alert()).permanent
        strict = TeamsChannel(timeout=TIMEOUT, retry_ambiguous=False, allow_http_loopback=True)
        assert failure_of(strict, make_alert()).permanent
        rig.standin.delay(0)
        rig.channel.send(make_alert())
        assert rig.created() == 3     # the two late answers landed, and the retry posted again


def test_a_refused_connection_is_safe_to_retry_even_for_teams(monkeypatch):
    with _rig("teams", monkeypatch) as rig:
        rig.standin.down(True)
        strict = TeamsChannel(timeout=TIMEOUT, retry_ambiguous=False, allow_http_loopback=True)
        assert not failure_of(strict, make_alert()).permanent   # nothing was sent: retrying cannot duplicate
        rig.standin.down(False)
        strict.send(make_alert())
        assert rig.created() == 1


# ---------------------------------------------------------------------------- content

def test_slack_message_is_block_kit_with_the_evidence(monkeypatch):
    with _rig("slack", monkeypatch) as rig:
        rig.channel.send(make_alert())
        [message] = rig.standin.messages
    blocks = {block["type"]: block for block in message["blocks"]}
    assert "churn v3: performance degradation (critical)" in blocks["header"]["text"]["text"]
    facts = " ".join(field["text"] for field in message["blocks"][1]["fields"])
    assert "critical (P1 Critical)" in facts and "churn v3" in facts and "2026-11-08" in facts
    sections = " ".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b)
    assert "• income: ks statistic 0.2134, p=3.10e-08, psi 0.34" in sections
    assert "• auc: 0.812 [0.79, 0.834], Δ -0.061 vs reference 0.873" in sections
    assert [e["url"] for e in blocks["actions"]["elements"]] == ["http://dagster.test/runs/r1",
                                                               "http://mlflow.test/#/models/churn/versions/3"]
    assert message["metadata"]["event_payload"]["fingerprint"] == "churn:3:performance"


def test_slack_update_replaces_the_content_and_finds_the_message_behind_other_chatter(monkeypatch):
    with _rig("slack", monkeypatch) as rig:
        rig.channel.send(make_alert())
        rig.standin.post_noise(450)          # three pages of history to search through
        delivery = rig.channel.send(make_alert(window="2026-11-09", occurrence=2, severity="warning"))
        alerts = [m for m in rig.standin.messages if m["metadata"]]
    assert delivery.action == "updated" and len(alerts) == 1
    assert alerts[0]["edited"] and alerts[0]["metadata"]["event_payload"]["window"] == "2026-11-09"
    assert "Window: 2026-11-09" in [field["text"] for field in alerts[0]["blocks"][1]["fields"]]


def test_slack_answers_with_ok_false_become_permanent_or_retryable(monkeypatch):
    with _rig("slack", monkeypatch) as rig:
        unknown = SlackChannel("C0NOWHERE", base_url=rig.standin.api_url, timeout=TIMEOUT, allow_http_loopback=True)
        error = failure_of(unknown, make_alert())
        assert error.permanent and "channel_not_found" in str(error)


def test_long_lists_are_cut_and_the_cut_is_stated(monkeypatch):
    many = [{"name": f"f{i}", "test": "ks", "statistic": 0.1, "p_value": 0.01, "effect_size": 0.2,
             "effect_metric": "psi"} for i in range(15)]
    with _rig("slack", monkeypatch) as slack, _rig("teams", monkeypatch) as teams:
        slack.channel.send(make_alert(features=many))
        teams.channel.send(make_alert(features=many))
        assert "and 5 more features" in json.dumps(slack.standin.messages[0]["blocks"])
        assert "and 5 more features" in json.dumps(teams.standin.cards[0])
        assert "• f9:" in json.dumps(slack.standin.messages[0]["blocks"], ensure_ascii=False)


def card_facts(card: dict) -> dict[str, str]:
    """'label: value' rows of a card (RichTextBlocks of a bold run and a plain run) as a dict."""
    return {block["inlines"][0]["text"].removesuffix(": "): block["inlines"][1]["text"] for block in card["body"]
            if block["type"] == "RichTextBlock" and len(block["inlines"]) == 2}


def test_teams_card_is_an_adaptive_card_with_the_same_content(monkeypatch):
    with _rig("teams", monkeypatch) as rig:
        delivery = rig.channel.send(make_alert())
        [card] = rig.standin.cards
    assert delivery.action == "posted" and delivery.external_id
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = card_facts(card)
    assert facts["Severity"] == "critical (P1 Critical)" and facts["Model"] == "churn v3"
    assert facts["Fingerprint"] == "churn:3:performance"
    assert facts["income"] == "ks statistic 0.2134, p=3.10e-08, psi 0.34"
    assert facts["auc"] == "0.812 [0.79, 0.834], Δ -0.061 vs reference 0.873"
    assert [a["url"] for a in card["actions"]][0] == "http://dagster.test/runs/r1"


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_jira_issue_fields_comments_and_reopening(monkeypatch, deployment):
    with _rig(f"jira_{deployment.lower()}", monkeypatch) as rig:
        rig.channel.send(make_alert())
        rig.channel.send(make_alert(window="2026-11-09", occurrence=2))
        rig.channel.send(make_alert(window="2026-11-09", occurrence=2))      # same alert again: no second comment
        [issue] = rig.standin.issues
        rig.standin.resolve(issue["key"])
        reopened = rig.channel.send(make_alert(window="2026-11-10", occurrence=3))
        warning = JiraChannel(rig.standin.url, "OPS", user="bot@example.com", timeout=TIMEOUT, allow_http_loopback=True)
        warning.send(make_alert(fingerprint="churn:3:data_drift", severity="warning", kind="data_drift"))
        issues = rig.standin.issues
    fields = issue["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Bug"}
    assert fields["priority"] == {"name": "Highest"} and fields["summary"] == make_alert().title
    assert fingerprint_key("churn:3:performance") in fields["labels"]
    assert "income: ks statistic 0.2134" in fields["description"]
    assert len(issue["comments"]) == 1 and wiki_escape("window 2026-11-09") in issue["comments"][0]["body"]
    assert reopened.action == "reopened" and len(issues) == 2          # the problem came back: same issue
    assert issues[0]["status_category"] == "new" and wiki_escape("window 2026-11-10") in issues[0]["comments"][-1]["body"]
    assert issues[1]["fields"]["priority"] == {"name": "Medium"}


def test_jira_rejecting_a_field_is_permanent_with_its_reason(monkeypatch):
    with _rig("jira_server", monkeypatch) as rig:
        odd = JiraChannel(rig.standin.url, "OPS", user="bot@example.com", timeout=TIMEOUT, allow_http_loopback=True,
                          priority_names={1: "P1", 2: "P2", 3: "P3", 4: "P4", 5: "P5"})
        error = failure_of(odd, make_alert())
    assert error.permanent and "Specify a valid priority" in str(error)


def test_servicenow_incident_has_itil_fields_and_correlation_id(monkeypatch):
    with _rig("servicenow", monkeypatch) as rig:
        created = rig.channel.send(make_alert())
        rig.channel.send(make_alert(window="2026-11-09", occurrence=2))
        [incident] = rig.standin.incidents
        rig.standin.resolve(incident["number"])
        reopened = rig.channel.send(make_alert(window="2026-11-10", occurrence=3))
        count = len(rig.standin.incidents)
    assert created.external_id == incident["number"]
    assert (incident["impact"], incident["urgency"], incident["priority"]) == ("1", "1", "1")
    assert incident["correlation_id"] == fingerprint_key("churn:3:performance")
    assert incident["short_description"] == make_alert().title
    assert len(incident["work_notes"]) == 1 and "window 2026-11-09" in incident["work_notes"][0]
    assert reopened.action == "reopened" and count == 1          # the problem came back: same incident


# ---------------------------------------------------------------------------- severity, retry-after, registry

@pytest.mark.parametrize("severity, expected", [("critical", (1, 1, 1)), ("warning", (2, 2, 3)), ("info", (3, 3, 5))])
def test_severity_maps_to_itil_and_agrees_with_servicenow(severity, expected, monkeypatch):
    itil = itil_fields(severity)
    assert (itil.impact, itil.urgency, itil.priority) == expected
    assert ServiceNowStandin.PRIORITY[(str(itil.impact), str(itil.urgency))] == str(itil.priority)
    assert PRIORITY_MATRIX[itil.impact][itil.urgency] == itil.priority
    with pytest.raises(ValueError, match="unknown severity"):
        itil_fields("page-everyone")


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("12") == 12.0
    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 <= parse_retry_after(in_a_minute) <= 60
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_load_channel_builds_built_ins_and_entry_point_channels(tmp_path, monkeypatch):
    dist = tmp_path / "acme_alerts-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-alerts\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[watchkeeper.channels]\nrecorder = acme_recorder:RecorderChannel\n"
                                           "slack = acme_recorder:RecorderChannel\nbroken = acme_recorder:NotAChannel\n")
    (tmp_path / "acme_recorder.py").write_text(
        "from watchkeeper.alerting.record import Delivery\n"
        "class RecorderChannel:\n"
        "    def __init__(self, name='recorder', prefix=''):\n"
        "        self.name, self.prefix, self.sent = name, prefix, []\n"
        "    def send(self, alert):\n"
        "        self.sent.append(alert)\n"
        "        return Delivery(self.name, self.prefix + alert.fingerprint, 'posted')\n"
        "class NotAChannel:\n"
        "    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    recorder = load_channel("recorder", prefix="acme/")
    assert recorder.send(make_alert()).external_id == "acme/churn:3:performance"
    assert "recorder" in available_channel_types() and available_channel_types()[:4] == list(CHANNEL_TYPES)
    assert isinstance(load_channel("slack", channel_id="C0ALERTS"), SlackChannel)   # built-ins win
    assert isinstance(load_channel("servicenow", instance_url="https://x.service-now.com"), ServiceNowChannel)
    with pytest.raises(TypeError, match="lacks `name` or `send"):
        load_channel("broken")
    with pytest.raises(ValueError, match="unknown channel type 'pagerduty'.*recorder"):
        load_channel("pagerduty")


@pytest.mark.parametrize("type_name, config, message", [
    ("slack", {"channel_id": ""}, "Slack channel: channel_id must be a non-empty string"),
    ("jira", {"server": "example.atlassian.net", "project": "OPS"}, "Jira channel: server must be an http"),
    ("jira", {"server": "https://j.test", "project": "OPS", "priority_names": {1: "P1"}}, "priority_names needs a name"),
    ("servicenow", {"instance_url": "https://x.service-now.com", "timeout": 0}, "timeout must be a positive"),
    ("teams", {"url_env": ""}, "Teams channel: url_env must be"),
])
def test_bad_config_is_a_one_line_error_at_load_time(type_name, config, message):
    with pytest.raises(ValueError, match=message) as caught:
        load_channel(type_name, **config)
    assert "\n" not in str(caught.value)
