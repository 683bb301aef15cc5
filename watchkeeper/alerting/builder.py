"""Alert records from a model_health verdict: one per problem kind, evidence but never rows.

A verdict's reasons (watchkeeper.health) carry the evidence a person triages with: the drifted
features with their test, statistic, p-value and effect size, the degraded metric with its
interval and reference, the stream detectors' alarms, and the ranked root cause. The builder
copies exactly those fields (a whitelist, so a reason that one day carries sample rows cannot
leak them into Slack or Jira) and groups the problem reasons by kind; the root cause enriches
the performance and concept-drift alerts it explains.

The fingerprint is `model:version:kind`: stable across windows, so a problem that persists is
one ticket that gets updated, not a new ticket every day; a new model version is a new problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from watchkeeper.alerting.record import KINDS, SEVERITIES, AlertRecord
from watchkeeper.messages import verdict_text
from watchkeeper.problems import fingerprint

# health.py's problem signals -> alert kind; "traffic" (no predictions at all) is a data-quality problem.
SIGNAL_KIND = {
    "data_drift": "data_drift",
    "concept_drift": "concept_drift",
    "performance": "performance",
    "data_quality": "data_quality",
    "traffic": "data_quality",
    "evaluation": "evaluation",
}
# Reasons that explain a problem rather than being one: the root cause enriches the alerts it
# explains; the history decisions stay in model_health's evidence for the UI.
CONTEXT_SIGNALS = ("root_cause", "history")
EXPLAINED_BY_ROOT_CAUSE = ("performance", "concept_drift")
# Used when a reason does not state its own severity, as health.py grades verdicts: a measured
# loss of performance or a concept-drift alarm is degradation (critical); input drift is a
# warning until it hurts; a window without predictions is information.
SIGNAL_SEVERITY = {
    "data_drift": "warning",
    "concept_drift": "critical",
    "performance": "critical",
    "data_quality": "warning",
    "traffic": "info",
    "evaluation": "warning",
}
KIND_LABEL = {
    "data_drift": "data drift",
    "concept_drift": "concept drift",
    "performance": "performance degradation",
    "data_quality": "data quality",
    "evaluation": "failed evaluation",
}
FEATURE_KEYS = ("name", "test", "statistic", "p_value", "effect_size", "effect_metric")
ALARM_KEYS = ("detector", "index", "timestamp", "error_rate_before", "error_rate_after")
SEGMENT_KEYS = ("segment", "delta")
MAX_SEGMENTS = 5


class AlertBuildError(ValueError):
    """A reason the builder cannot turn into an alert; one line, naming the reason."""


def build_alerts(model: str, version: str, window: str, task: str, verdict_status: str,
                 reasons: list[dict], links: Mapping[str, str]) -> list[AlertRecord]:
    """One AlertRecord per problem kind among `reasons`, in KINDS order; none for an "ok" verdict.

    >>> [a.fingerprint for a in build_alerts("churn", "3", "2026-11-08", "binary", "drifted",
    ...     [{"signal": "data_drift", "detail": "1 of 4 features drifted", "features": []}], {})]
    ['churn:3:data_drift']
    """
    if verdict_status == "ok":
        return []
    grouped: dict[str, list[dict]] = {}
    for i, reason in enumerate(reasons):
        signal = reason.get("signal")
        if signal in CONTEXT_SIGNALS:
            continue
        if signal not in SIGNAL_KIND:
            raise AlertBuildError(f"reasons[{i}]: unknown signal {signal!r} "
                                  f"(one of {', '.join([*SIGNAL_KIND, *CONTEXT_SIGNALS])})")
        grouped.setdefault(SIGNAL_KIND[signal], []).append(reason)
    cause = next((r for r in reasons if r.get("signal") == "root_cause"), None)
    drifted = {f["name"]: f for r in grouped.get("data_drift", []) for f in r.get("features", [])}
    return [_alert(model, version, window, task, kind, grouped[kind] + _explanation(kind, cause, drifted), links)
            for kind in KINDS if kind in grouped]


def _explanation(kind: str, cause: dict | None, drifted: Mapping[str, dict]) -> list[dict]:
    """The root cause as one more reason of a performance or concept-drift alert: its
    explanation, and its ranked features with the drift test's statistics where known."""
    if cause is None or kind not in EXPLAINED_BY_ROOT_CAUSE:
        return []
    features = [{**drifted.get(f["name"], {}), **f} for f in cause.get("features", [])]
    return [{"signal": "root_cause", "detail": f"likely cause: {cause['detail']}", "features": features,
             "segments": cause.get("segments", [])[:MAX_SEGMENTS]}]


def _alert(model: str, version: str, window: str, task: str, kind: str, reasons: list[dict],
           links: Mapping[str, str]) -> AlertRecord:
    severity = max((_severity(r) for r in reasons if r["signal"] != "root_cause"), key=SEVERITIES.index)
    return AlertRecord(
        fingerprint=fingerprint(model, version, kind),
        model=model, version=version, window=window, severity=severity, kind=kind,
        title=f"{model} v{version}: {KIND_LABEL[kind]} ({severity})",
        summary=f"{task} model {model} v{version}, window {window}: " + verdict_text(reasons),
        features=[_feature(f) for r in reasons for f in r.get("features", [])],
        metrics=[_metric(r) for r in reasons if "metric" in r],
        links={name: str(url) for name, url in links.items()},
        alarms=[{key: alarm.get(key) for key in ALARM_KEYS} for r in reasons for alarm in r.get("alarms", [])],
        segments=[{key: segment.get(key) for key in SEGMENT_KEYS} for r in reasons for segment in r.get("segments", [])],
    )


def _severity(reason: dict) -> str:
    severity = reason.get("severity", SIGNAL_SEVERITY[reason["signal"]])
    if severity not in SEVERITIES:
        raise AlertBuildError(f"reason {reason['signal']!r}: unknown severity {severity!r} "
                              f"(one of {', '.join(SEVERITIES)})")
    return severity


def _feature(feature: dict) -> dict:
    return {key: feature.get(key) for key in FEATURE_KEYS}


def _metric(reason: dict) -> dict:
    value, reference = reason.get("value"), reason.get("reference")
    delta = value - reference if value is not None and reference is not None else None
    return {"name": reason["metric"], "value": value, "lower": reason.get("lower"), "upper": reason.get("upper"),
            "reference": reference, "delta": delta}


def alert_links(dagster_url: str | None, run_id: str, mlflow_url: str | None, model: str, version: str,
                asset: str = "model_health") -> dict[str, str]:
    """Where to look next: the Dagster run and asset that raised the alert, and the MLflow model
    version. Links are absolute, from the configured base URLs (a ticket or a chat message is read
    far from the UI); a base that is not an absolute http(s) URL gives no link, never a relative one.
    """
    links = {}
    dagster, mlflow = absolute_base(dagster_url), absolute_base(mlflow_url)
    if dagster:
        links |= {"dagster_run": f"{dagster}/runs/{quote(run_id, safe='')}",
                  "dagster_asset": f"{dagster}/assets/{quote(asset, safe='')}"}
    if mlflow:
        links["mlflow_model_version"] = f"{mlflow}/#/models/{quote(model, safe='')}/versions/{quote(version, safe='')}"
    return links


def absolute_base(url: str | None) -> str | None:
    """`url` without its trailing slash when it is an absolute http(s) URL with a host, else None."""
    parts = urlsplit(url or "")
    return url.rstrip("/") if parts.scheme in ("http", "https") and parts.netloc else None
