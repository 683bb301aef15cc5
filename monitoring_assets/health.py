"""One verdict per model and window, and an alert the first time a problem appears."""

import dagster as dg

from monitoring_assets.concept import ERRORS, concept_drift
from monitoring_assets.drift import drift_report
from monitoring_assets.partitions import daily_windows
from monitoring_assets.performance import ESTIMATED, performance_metrics
from resources import AlertingResource, MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.alerting.builder import alert_links, build_alerts
from watchkeeper.alerting.outbox import Outbox
from watchkeeper.health import OK, Verdict, WindowEvidence, assess
from watchkeeper.history import stored_history
from watchkeeper.performance import PRIMARY_METRIC
from watchkeeper.store import MonitoringStore, StoredProfile, drift_reports, metrics, segment_metrics
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span

PROBLEM_SIGNALS = ("performance", "data_drift", "concept_drift")


@dg.asset(
    partitions_def=daily_windows,
    deps=[drift_report, performance_metrics, concept_drift],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: ok / drifted / degraded / no_data. Performance is judged against the "
                "reference with its interval, drift by the engine AND the model's own weekday history, "
                "stream alarms count as concept drift; the reasons, history decisions and root cause are "
                "recorded. Problems go to the alert outbox, routed by the alert policy (one alert per model "
                "version and kind, escalated while they persist).",
)
def model_health(context: dg.AssetExecutionContext, monitoring_store: MonitoringStoreResource,
                 monitoring_config: MonitoringConfigResource, alerting: AlertingResource) -> dg.MaterializeResult:
    day, store, config = context.partition_key, monitoring_store.store(), monitoring_config.load()
    outbox, policy = Outbox(store.engine), alerting.policy()
    rows, flagged, queued = [], [], []
    for model, stored in store.latest_profiles().items():
        with evaluation_span("model_health", model, stored.version, day) as step:
            model_config = config.for_model(model)
            verdict = assess(_evidence(store, model, stored, day), day, stored_history(store, model, stored.version, day),
                             model_config.health, model_config.drift)
            step.set(status=verdict.status)
            store.put_health(model, day, stored.version, verdict.status, verdict.reasons)
            _record_problems(context, store, model, stored, day, verdict)
            if day >= (store.latest_window(model) or day):   # a refreshed older window must not reopen or resolve
                links = alert_links(alerting.dagster_url, context.run_id, alerting.mlflow_url, model, stored.version)
                alerts = build_alerts(model, stored.version, day, stored.task, verdict.status, verdict.reasons, links)
                for fingerprint, plan in outbox.notify(model, stored.version, day, alerts, policy).items():
                    queued.append({"alert": fingerprint, "channels": ", ".join(d.channel for d in plan.dispatches),
                                   "held": ", ".join(f"{c} ({why})" for c, why in dict(plan.held).items())})
            if verdict.status != OK:
                flagged.append(model)
            rows.append({"model": model, "version": stored.version, "status": verdict.status,
                         "severity": verdict.severity, "why": "; ".join(r["detail"] for r in verdict.reasons
                                                                        if r["signal"] != "history")})
    return dg.MaterializeResult(metadata={
        "flagged_models": dg.MetadataValue.json(flagged),
        "verdicts": dg.MetadataValue.md(markdown_table(rows, ["model", "version", "status", "severity", "why"])),
        "alerts_queued": dg.MetadataValue.md(markdown_table(queued, ["alert", "channels", "held"])),
        "outbox": dg.MetadataValue.json(outbox.counts()),
    })


def _record_problems(context: dg.AssetExecutionContext, store: MonitoringStore, model: str, stored: StoredProfile,
                     day: str, verdict: Verdict) -> None:
    """The problem log: the first window of each problem (model, version, kind)."""
    for reason in (r for r in verdict.reasons if r["signal"] in PROBLEM_SIGNALS):
        fingerprint = f"{model}:{stored.version}:{reason['signal']}"
        if store.open_alert(fingerprint, model, stored.version, reason["signal"], day, reason):
            context.log.warning(f"problem {fingerprint} opened at {day}: {reason['detail']}")


def _evidence(store: MonitoringStore, model: str, stored: StoredProfile, day: str) -> WindowEvidence:
    drift = next(iter(store.rows(drift_reports, model, day)), None)
    realised = [m for m in store.rows(metrics, model, day) if not m["metric"].startswith(ESTIMATED)]
    alarms = store.stream_alarms(model, ERRORS, day)
    return WindowEvidence(
        task=stored.task,
        drift=drift["report"] if drift else None,
        metrics=[{"name": m["metric"], "value": m["value"], "lower": m["lower"], "upper": m["upper"]} for m in realised],
        reference=stored.reference,
        n_labelled=realised[0]["n_labelled"] if realised else 0,
        concept_alarms=alarms,
        segment_deltas=_segment_deltas(store, model, stored, day),
    )


def _segment_deltas(store: MonitoringStore, model: str, stored: StoredProfile, day: str) -> dict[str, float]:
    """Each configured segment's primary metric minus the reference: the root cause ranks them."""
    primary = PRIMARY_METRIC[stored.task]
    reference = stored.reference["metrics"][primary]["value"]
    rows = [r for s in store.rows(segment_metrics, model, day) for r in s["segments"]]
    return {r["segment"]: r["value"] - reference for r in rows if r["metric"] == primary and r["value"] is not None}


def flagged_models(event_metadata: dict) -> list[str]:
    """The models a model_health materialization flagged (read by the scorecard sensor)."""
    value = event_metadata.get("flagged_models")
    return list(value.value) if value is not None else []
