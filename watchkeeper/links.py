"""Absolute links from a model to where its evidence lives, from the configured base URLs of the
Dagster UI and MLflow (a relative link has no page to open outside the UI that drew it)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode


def model_links(dagster_url: str, mlflow_url: str, model: str, version: str, latest_window: str | None,
                first_flagged: str | None) -> dict[str, str]:
    """From a model's scorecard (its history): drift (the drift report of the first flagged window,
    else the latest), alerts (model_health of that window: verdicts and the alerts they raised), and
    the MLflow model version when an MLflow UI is configured.

    >>> model_links("http://ui:3001/", "", "m", "2", "2026-11-14", None)["alerts"]
    'http://ui:3001/assets/model_health?view=partitions&partition=2026-11-14'
    """
    dagster = dagster_url.rstrip("/")
    window = first_flagged or latest_window
    links = {}
    if window:
        where = urlencode({"view": "partitions", "partition": window})
        links |= {"drift": f"{dagster}/assets/drift_report?{where}", "alerts": f"{dagster}/assets/model_health?{where}"}
    if mlflow_url:
        links["mlflow"] = f"{mlflow_url.rstrip('/')}/#/models/{quote(model, safe='')}/versions/{quote(version, safe='')}"
    return links


def ticket_url(channel_type: str, config: Mapping[str, object], ticket: str, record: str) -> str | None:
    """Where a person opens the ticket a channel gave a problem: the Jira issue's page, or the
    ServiceNow record (incident, problem or change request, by `record`) found by its number.
    None for a channel with no ticket page (an outbox, a chat).

    >>> ticket_url("jira", {"server": "https://jira.example/"}, "MLOPS-7", "incident")
    'https://jira.example/browse/MLOPS-7'
    >>> ticket_url("servicenow", {"instance_url": "https://sn.example"}, "CHG0001", "change")
    'https://sn.example/change_request.do?sysparm_query=number%3DCHG0001'
    """
    from watchkeeper.alerting.channels.servicenow import TABLES   # requests loads only for a ServiceNow link

    if channel_type == "jira":
        return f"{str(config['server']).rstrip('/')}/browse/{quote(ticket, safe='')}"
    if channel_type == "servicenow":
        table = TABLES.get(record, "incident")
        return f"{str(config['instance_url']).rstrip('/')}/{table}.do?{urlencode({'sysparm_query': f'number={ticket}'})}"
    return None
