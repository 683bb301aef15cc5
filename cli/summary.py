"""The demo's JSON summary, read back from the monitoring store (what the assets wrote)."""

from __future__ import annotations

from watchkeeper.problems import Problem, ProblemLog
from watchkeeper.registry import Registry
from watchkeeper.retraining.challenger import ACTION_TAG
from watchkeeper.retraining.gate import GATE_STATUS_TAG
from watchkeeper.store import MonitoringStore, StoredProfile


def summarize(store_url: str, tracking_uri: str, failed_runs: list[str]) -> dict:
    store, registry = MonitoringStore(store_url), Registry(tracking_uri)
    outbox = store.outbox()
    deliveries = outbox.rows()
    models = [_model_summary(store, name, stored) | _retraining(registry, name) | _actions(deliveries, name)
              for name, stored in sorted(store.latest_profiles().items())]
    return {"models": models, "outbox": outbox.counts(), "failed_runs": failed_runs}


def _actions(deliveries: list[dict], name: str) -> dict:
    """What the alert policy did for a model: tickets (one per problem) and escalations."""
    mine = [d for d in deliveries if d["fingerprint"].startswith(f"{name}:")]
    return {"outbox_alerts": sum(d["channel"] == OUTBOX_CHANNEL for d in mine),
            "tickets": len({d["fingerprint"] for d in mine if d["channel"] == TICKETS_CHANNEL}),
            "escalations": sum(d["channel"] == ESCALATION_CHANNEL for d in mine)}


# The channels of deploy/alerting.demo.yaml.
OUTBOX_CHANNEL, TICKETS_CHANNEL, ESCALATION_CHANNEL = "outbox", "tickets", "ml-leads"


def _retraining(registry: Registry, name: str) -> dict:
    """Retrain runs leave tagged versions in MLflow: how many, the newest, and what the gate said."""
    versions = registry.client.search_model_versions(f"name='{name}'")
    retrained = sorted((v for v in versions if ACTION_TAG in v.tags), key=lambda v: int(v.version))
    newest = retrained[-1] if retrained else None
    return {"retrains": len(retrained), "challenger_version": str(newest.version) if newest else None,
            "promotion": newest.tags.get(GATE_STATUS_TAG) if newest else None}


def _model_summary(store: MonitoringStore, name: str, stored: StoredProfile) -> dict:
    verdicts = store.verdicts(name)
    drifted = [d for d in store.drift(name) if d.dataset_drift]
    flagged = [v.window for v in verdicts if v.status in ("drifted", "degraded")]
    labelled = {m.window: m.n_labelled / max(m.n_predictions, 1) for m in store.metrics(name)}
    log = ProblemLog(store)
    model_alerts = log.problems(name)
    return {
        "name": name,
        "version": stored.version,
        "task": stored.task,
        "windows": sum(w.n_rows > 0 for w in store.windows(name)),
        "drifted_windows": [d.window for d in drifted],
        "degraded_windows": [v.window for v in verdicts if v.status == "degraded"],
        "flagged_windows": flagged,
        "first_flagged_window": flagged[0] if flagged else None,
        "drifted_features": sorted({f for d in drifted for f in d.report["drifted_features"]}),
        "health": verdicts[-1].status if verdicts else "no_data",
        "label_completeness": labelled,
        "concept_alarm_days": [s.day for s in store.streams(name) if s.stream == "errors" and s.alarms],
        "alerts": len(model_alerts),
        "alert_kinds": sorted(a.kind for a in model_alerts),
        "problems": [_problem(log, p) for p in model_alerts],
    }


def _problem(log: ProblemLog, problem: Problem) -> dict:
    """One problem as the demo's JSON contract shows it: kind, state, opened (its first window), and
    its tickets (the ticket or message id each channel gave it), plus the ITIL record and fingerprint."""
    return {"kind": problem.kind, "state": problem.state, "opened": problem.first_window,
            "tickets": [{"channel": channel, "id": ticket} for channel, ticket in log.tickets(problem.fingerprint).items()
                        if channel not in (OUTBOX_CHANNEL, ESCALATION_CHANNEL)],
            "record": problem.record, "fingerprint": problem.fingerprint}
