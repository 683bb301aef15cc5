"""The demo's JSON summary, read back from the monitoring store (what the assets wrote)."""

from __future__ import annotations

from watchkeeper.store import MonitoringStore, alerts, drift_reports, health, metrics, streams, windows


def summarize(store_url: str, failed_runs: list[str]) -> dict:
    store = MonitoringStore(store_url)
    models = [_model_summary(store, name, stored) for name, stored in sorted(store.latest_profiles().items())]
    return {"models": models, "failed_runs": failed_runs}


def _model_summary(store: MonitoringStore, name: str, stored) -> dict:
    verdicts = store.rows(health, name)
    drifted = [d for d in store.rows(drift_reports, name) if d["dataset_drift"]]
    flagged = [v["window"] for v in verdicts if v["status"] in ("drifted", "degraded")]
    labelled = {m["window"]: m["n_labelled"] / max(m["n_predictions"], 1) for m in store.rows(metrics, name)}
    model_alerts = store.rows(alerts, name)
    return {
        "name": name,
        "version": stored.version,
        "task": stored.task,
        "windows": sum(w["n_rows"] > 0 for w in store.rows(windows, name)),
        "drifted_windows": [d["window"] for d in drifted],
        "degraded_windows": [v["window"] for v in verdicts if v["status"] == "degraded"],
        "flagged_windows": flagged,
        "first_flagged_window": flagged[0] if flagged else None,
        "drifted_features": sorted({f for d in drifted for f in d["report"]["drifted_features"]}),
        "health": verdicts[-1]["status"] if verdicts else "no_data",
        "label_completeness": labelled,
        "concept_alarm_days": [s["day"] for s in store.rows(streams, name) if s["stream"] == "errors" and s["alarms"]],
        "alerts": len(model_alerts),
        "alert_kinds": sorted(a["kind"] for a in model_alerts),
    }
