"""Outbound channels over https to a server whose certificate a private CA signed: each
channel verifies it against the `ca_bundle` it is given (even with $REQUESTS_CA_BUNDLE set to
the system's store, as on this machine), and refuses to deliver without that CA."""

from __future__ import annotations

import pytest

from identity import Pki
from standins import JiraStandin, ServiceNowStandin, SlackStandin, TeamsStandin
from test_channels import make_alert
from watchkeeper.alerting.channels.jira_channel import JiraChannel
from watchkeeper.alerting.channels.servicenow import ServiceNowChannel
from watchkeeper.alerting.channels.slack import SlackChannel
from watchkeeper.alerting.channels.teams import TeamsChannel
from watchkeeper.alerting.record import ChannelError

SECRETS = {"SLACK_BOT_TOKEN": "xoxb-tls", "JIRA_API_TOKEN": "jira-tls", "SERVICENOW_USER": "watchkeeper.integration",
           "SERVICENOW_PASSWORD": "sn-tls-password"}


def slack(standin, **tls):
    return SlackChannel("C0ALERTS", base_url=standin.api_url, timeout=10, **tls)


def teams(standin, **tls):
    return TeamsChannel(timeout=10, **tls)


def jira(standin, **tls):
    return JiraChannel(standin.url, "OPS", user="bot@example.com", timeout=10, **tls)


def servicenow(standin, **tls):
    return ServiceNowChannel(standin.url, timeout=10, **tls)


CASES = {"slack": (lambda: SlackStandin(token=SECRETS["SLACK_BOT_TOKEN"]), slack),
         "teams": (lambda: TeamsStandin(), teams),
         "jira": (lambda: JiraStandin(token=SECRETS["JIRA_API_TOKEN"], user="bot@example.com"), jira),
         "servicenow": (lambda: ServiceNowStandin(password=SECRETS["SERVICENOW_PASSWORD"]), servicenow)}


@pytest.mark.parametrize("name", CASES)
def test_a_channel_trusts_its_ca_bundle_and_nothing_else(name, tmp_path, monkeypatch):
    pki = Pki(tmp_path)
    make_standin, make_channel = CASES[name]
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    with make_standin().serve_tls(pki.cert, pki.key) as standin:
        assert standin.url.startswith("https://")
        if name == "teams":
            monkeypatch.setenv("TEAMS_WEBHOOK_URL", standin.webhook_url)
        with pytest.raises(ChannelError) as refused:   # the system trust store does not know the private CA
            make_channel(standin).send(make_alert())
        assert "TLS certificate is not trusted" in str(refused.value)
        delivery = make_channel(standin, ca_bundle=str(pki.ca)).send(make_alert())
        assert delivery.external_id and delivery.action in ("created", "posted")
    with pytest.raises(ValueError, match="ca_bundle .* is not a file"):
        make_channel(standin, ca_bundle=str(tmp_path / "missing.pem"))
