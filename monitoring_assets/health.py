"""One verdict per model and window, and an alert the first time a problem appears."""

import dagster as dg

from monitoring_assets.drift import drift_report
from monitoring_assets.partitions import daily_windows
from monitoring_assets.performance import performance_metrics
from resources import MonitoringStoreResource
from watchkeeper.health import OK, assess
from watchkeeper.store import drift_reports, metrics
from watchkeeper.tables import markdown_table


@dg.asset(
    partitions_def=daily_windows,
    deps=[drift_report, performance_metrics],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: ok / drifted / degraded / no_data, with the signals that fired "
                "and their evidence. A new problem opens one alert per model version and kind.",
)
def model_health(context: dg.AssetExecutionContext, monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    day, store = context.partition_key, monitoring_store.store()
    rows, flagged = [], []
    for model, stored in store.latest_profiles().items():
        drift = next(iter(store.rows(drift_reports, model, day)), None)
        window_metrics = store.rows(metrics, model, day)
        n_labelled = window_metrics[0]["n_labelled"] if window_metrics else 0
        verdict = assess(stored.task, drift["report"] if drift else None,
                         [{k: m[k] for k in ("value", "lower", "upper")} | {"name": m["metric"]} for m in window_metrics],
                         stored.reference["metrics"], n_labelled)
        store.put_health(model, day, stored.version, verdict.status, verdict.reasons)
        for reason in verdict.reasons if verdict.status != OK else []:
            fingerprint = f"{model}:{stored.version}:{reason['signal']}"
            if store.open_alert(fingerprint, model, stored.version, reason["signal"], day, reason):
                context.log.warning(f"alert {fingerprint} opened at {day}: {reason['detail']}")
        if verdict.status != OK:
            flagged.append(model)
        rows.append({"model": model, "version": stored.version, "status": verdict.status,
                     "severity": verdict.severity, "why": "; ".join(r["detail"] for r in verdict.reasons)})
    return dg.MaterializeResult(metadata={
        "flagged_models": dg.MetadataValue.json(flagged),
        "verdicts": dg.MetadataValue.md(markdown_table(rows, ["model", "version", "status", "severity", "why"])),
        "evidence": dg.MetadataValue.json({r["model"]: r for r in rows}),
    })


def flagged_models(event_metadata: dict) -> list[str]:
    """The models a model_health materialization flagged (read by the scorecard sensor)."""
    value = event_metadata.get("flagged_models")
    return list(value.value) if value is not None else []
