"""Absolute links from a model to where its evidence lives, from the configured base URLs of the
Dagster UI and MLflow (a relative link has no page to open outside the UI that drew it)."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def model_links(dagster_url: str, mlflow_url: str, model: str, version: str, latest_window: str | None,
                first_flagged: str | None) -> dict[str, str]:
    """history (the model's scorecard), drift (the drift report of the first flagged window, else the
    latest), alerts (model_health of that window: verdicts and the alerts they queued), and the MLflow
    model version when an MLflow UI is configured.

    >>> model_links("http://ui:3001/", "", "m", "2", "2026-11-14", None)["alerts"]
    'http://ui:3001/assets/model_health?view=partitions&partition=2026-11-14'
    """
    dagster = dagster_url.rstrip("/")
    window = first_flagged or latest_window
    links = {"history": f"{dagster}/assets/model_scorecard?{urlencode({'view': 'partitions', 'partition': model})}"}
    if window:
        where = urlencode({"view": "partitions", "partition": window})
        links |= {"drift": f"{dagster}/assets/drift_report?{where}", "alerts": f"{dagster}/assets/model_health?{where}"}
    if mlflow_url:
        links["mlflow"] = f"{mlflow_url.rstrip('/')}/#/models/{quote(model, safe='')}/versions/{quote(version, safe='')}"
    return links
