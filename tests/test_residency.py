"""Residency as policy: every write or send outside the allowed locations is refused before a byte
leaves, audited, and reported by `watchkeeper config validate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from conftest import ROOT
from standins import SlackStandin
from watchkeeper.alerting.channels import SlackChannel
from watchkeeper.alerting.outbox import DEAD, DELIVERED, Sender
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.security.audit import ALERT_DELIVERED, RESIDENCY_REFUSED, Actor
from watchkeeper.security.residency import (
    ALERTS,
    POLICY_ENV,
    ROWS,
    ResidencyError,
    load_residency,
    parse_residency,
)
from watchkeeper.store import MonitoringStore

POLICY = """
version: 1
locations:
  uae-north: {hosts: ["*.uaenorth.example.com"], uris: ["s3://acme-uae-*"]}
  on-premises: {uris: ["file:*", "sqlite:*"]}
  us-east: {hosts: ["127.0.0.1", "slack.com", "*.slack.com"]}
allowed:
  rows: [uae-north, on-premises]
  aggregates: [uae-north, on-premises]
  alerts: [%s]
"""


def policy_file(tmp_path: Path, alerts: str = "uae-north, on-premises") -> Path:
    path = tmp_path / "residency.yaml"
    path.write_text(POLICY % alerts)
    return path


@pytest.fixture
def in_force(tmp_path, monkeypatch) -> Path:
    path = policy_file(tmp_path)
    monkeypatch.setenv(POLICY_ENV, str(path))
    return path


def test_destinations_are_located_by_host_or_uri_and_credentials_never_shown(tmp_path):
    policy = load_residency(policy_file(tmp_path))
    assert policy.locate("https://mlflow.uaenorth.example.com/api") == "uae-north"
    assert policy.locate("s3://acme-uae-windows/prod") == "uae-north"
    assert policy.locate(tmp_path / "windows") == "on-premises"
    assert policy.locate("postgresql+psycopg2://app:secret@db.eu-west.example.org/wk") == "unknown"
    with pytest.raises(ResidencyError) as refused:
        policy.check("aggregates", "the monitoring store", "postgresql+psycopg2://app:s3cret@db.eu-west.example.org/wk")
    message = str(refused.value)
    assert "s3cret" not in message and "app@" not in message
    assert message == ("residency: aggregates for the monitoring store may not go to "
                       "postgresql+psycopg2://db.eu-west.example.org (location unknown; allowed for aggregates: "
                       "uae-north, on-premises)")


@pytest.mark.parametrize("text, error", [
    ("version: 2\nlocations: {}\nallowed: {}", "unsupported version 2"),
    ("version: 1\nlocations: {a: {hosts: [x]}}\nallowed: {rows: [a], aggregates: [a], alerts: [b]}",
     "allowed.alerts: unknown location 'b'"),
    ("version: 1\nlocations: {a: {hosts: [x], region: y}}\nallowed: {rows: [a], aggregates: [a], alerts: [a]}",
     "locations.a: unknown key 'region'"),
    ("version: 1\nlocations: {a: {hosts: [x]}}\nallowed: {rows: [a], aggregates: [a]}", "missing key 'alerts'"),
    ("version: 1\nlocations: {a: {}}\nallowed: {rows: [a], aggregates: [a], alerts: [a]}", "give hosts, uris"),
    ("version: 1\nversion: 1\n", "key 'version' appears twice"),
])
def test_a_bad_policy_file_is_one_line_naming_the_path(tmp_path, text, error):
    path = tmp_path / "residency.yaml"
    path.write_text(text)
    with pytest.raises(ResidencyError, match=error) as refused:
        load_residency(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def queue_one(store: MonitoringStore) -> None:
    alert = AlertRecord("churn:3:data_drift", "churn", "3", "2026-11-10", "warning", "data_drift", "t", "s")
    store.outbox().enqueue(alert, ["slack"])


def test_a_send_outside_the_policy_is_refused_before_any_byte_and_audited(tmp_path, in_force, monkeypatch):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    queue_one(store)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    with SlackStandin(token="xoxb-test") as slack:
        channel = SlackChannel("C0ALERTS", base_url=slack.api_url, allow_http_loopback=True)
        stats = Sender(store.outbox(), {"slack": channel}, actor=Actor("sender-1")).run_once()
        assert slack.requests == []                     # nothing reached the server, not even a connection
    assert stats.dead == 1 and stats.delivered == 0
    row = store.outbox().rows()[0]
    assert row["status"] == DEAD
    assert row["last_error"].startswith("residency: alerts for channel slack may not go to http://127.0.0.1:")
    [entry] = store.audit_entries(RESIDENCY_REFUSED)
    assert (entry.actor, entry.subject, entry.partition) == ("sender-1", "churn:3:data_drift", "2026-11-10")
    assert entry.details["location"] == "us-east" and entry.details["data_class"] == ALERTS
    assert store.verify_audit()[1] is None


def test_a_send_inside_the_policy_is_delivered_and_audited(tmp_path, monkeypatch):
    monkeypatch.setenv(POLICY_ENV, str(policy_file(tmp_path, alerts="us-east")))
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    queue_one(store)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    with SlackStandin(token="xoxb-test") as slack:
        channel = SlackChannel("C0ALERTS", base_url=slack.api_url, allow_http_loopback=True)
        assert Sender(store.outbox(), {"slack": channel}).run_once().delivered == 1
        assert len(slack.messages) == 1
    assert store.outbox().rows()[0]["status"] == DELIVERED
    [entry] = store.audit_entries(ALERT_DELIVERED)
    assert entry.details["channel"] == "slack" and entry.details["action"] == "created"


def test_a_store_outside_the_policy_is_refused_before_it_is_opened(tmp_path, in_force):
    with pytest.raises(ResidencyError, match="aggregates for the monitoring store may not go to "
                                             "postgresql://db.eu-west.example.org"):
        MonitoringStore("postgresql://app:pw@db.eu-west.example.org:5432/wk")


def test_windows_outside_the_policy_are_not_written_and_the_refusal_is_audited(tmp_path, monkeypatch):
    from test_monitor import DAY, POLICY as ALERT_POLICY, rows
    import numpy as np

    from watchkeeper.config import MonitoringConfig
    from watchkeeper.inference_log import INFERENCE, InferenceLog
    from watchkeeper.monitor import WindowMonitor
    from watchkeeper.performance import MetricValue
    from watchkeeper.profile import fit_profile
    from watchkeeper.reference import ModelReference

    rng = np.random.default_rng(1)
    store, data = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), tmp_path / "data"
    reference = ModelReference("churn", "1", "regression", ["x", "y"], fit_profile(rows(rng, 2000)[["x", "y"]]),
                               {"mae": MetricValue("mae", 0.8, 0.7, 0.9)})
    store.put_profile("churn", "1", "regression", *reference.to_stored())
    (data / INFERENCE / "churn").mkdir(parents=True)
    rows(rng, 500).to_parquet(data / INFERENCE / "churn" / f"{DAY}.parquet")
    policy = tmp_path / "residency.yaml"   # the drop folder's disk is not an allowed place for rows
    policy.write_text(POLICY.replace('on-premises: {uris: ["file:*", "sqlite:*"]}',
                                     'on-premises: {uris: ["sqlite:*"]}') % "uae-north")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    [outcome] = WindowMonitor(store, InferenceLog(data), MonitoringConfig(), ALERT_POLICY,
                              actor=Actor("dagster:evaluate_window", "run-1")).evaluate(DAY)
    assert outcome.verdict.status == "failed" and outcome.failures["window"].startswith("residency: rows for window "
                                                                                         "storage may not go to file://")
    assert not (data / "windows").exists()
    [entry] = store.audit_entries(RESIDENCY_REFUSED)
    assert (entry.subject, entry.run_id, entry.partition) == ("window storage", "run-1", DAY)


def write_alerting(tmp_path: Path) -> Path:
    path = tmp_path / "alerting.yaml"
    path.write_text("""
version: 1
channels:
  outbox: {type: outbox}
  slack: {type: slack, channel_id: C0ALERTS, base_url: "https://slack.com/api/"}
  jira: {type: jira, server: "https://ops.uaenorth.example.com", project: OPS}
routes:
  - to: [outbox, slack, jira]
""")
    return path


def test_config_validate_reports_every_violation(tmp_path, capsys):
    args = ["config", "validate", "--alerting", str(write_alerting(tmp_path)), "--residency", str(policy_file(tmp_path)),
            "--store-url", f"sqlite:///{tmp_path / 'monitoring.db'}", "--data-dir", str(tmp_path),
            "--mlflow-uri", "https://mlflow.eu-west.example.org"]
    assert main(args) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        "watchkeeper config validate: error: residency: aggregates for MLflow tracking may not go to "
        "https://mlflow.eu-west.example.org (location unknown; allowed for aggregates: uae-north, on-premises)",
        "watchkeeper config validate: error: residency: alerts for channel slack may not go to https://slack.com "
        "(location us-east; allowed for alerts: uae-north, on-premises)"]


def test_config_validate_passes_a_configuration_within_the_policy(tmp_path, capsys):
    policy = policy_file(tmp_path, alerts="uae-north, on-premises, us-east")
    args = ["config", "validate", "--alerting", str(write_alerting(tmp_path)), "--residency", str(policy),
            "--store-url", f"sqlite:///{tmp_path / 'monitoring.db'}", "--data-dir", str(tmp_path)]
    assert main(args) == 0
    assert "4 destinations within the policy" in capsys.readouterr().out


def test_the_repository_residency_example_is_valid():
    parse_residency(__import__("yaml").safe_load((ROOT / "deploy" / "residency.yaml").read_text()))
    assert ROWS in load_residency(ROOT / "deploy" / "residency.yaml").allowed
