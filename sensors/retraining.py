"""Starts retrain_model for a model whose problem has persisted, once per champion version.

It reads verdicts from the monitoring store rather than Dagster events, so it sees every
window of every model whatever the order in which runs finished.
"""

from datetime import date, timedelta

import dagster as dg

from monitoring_assets.retraining import retrain_model
from resources import MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.health import DEGRADED, DRIFTED
from watchkeeper.history import HISTORY_DAYS
from watchkeeper.store import StoredVerdict


@dg.sensor(job=retrain_model, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Retrains a model when its last `retraining.after_windows` verdicts (deploy/monitoring.yaml) "
                       "are all drifted or degraded; one attempt per champion version.")
def retraining_sensor(context: dg.SensorEvaluationContext, monitoring_store: MonitoringStoreResource,
                      monitoring_config: MonitoringConfigResource) -> list[dg.RunRequest]:
    store, config = monitoring_store.store(), monitoring_config.load()
    requests = []
    for model, stored in store.latest_profiles().items():
        verdicts = [v for v in store.verdicts(model, since=_look_back(store.latest_window(model)))
                    if v.version == stored.version]
        persisting = _persisting_problem(verdicts, config.for_model(model).retraining.after_windows)
        if persisting:
            inputs_stable = not any(r["signal"] == "data_drift" for v in persisting for r in v.reasons)
            run_config = {"ops": {"retrain_model_op": {"config": {
                "model": model, "windows": [v.window for v in persisting], "inputs_stable": inputs_stable}}}}
            requests.append(dg.RunRequest(run_key=f"retrain:{model}:{stored.version}", run_config=run_config,
                                          tags={"model": model, "model_version": stored.version}))
    return requests


def _look_back(latest: str | None) -> str | None:
    """Only the recent verdicts matter, and a tick must stay well inside Dagster's 60 s for any fleet."""
    return (date.fromisoformat(latest) - timedelta(days=HISTORY_DAYS)).isoformat() if latest else None


def _persisting_problem(verdicts: list[StoredVerdict], after_windows: int) -> list[StoredVerdict]:
    """The current problem's windows (from its first flagged window), if the latest `after_windows` are flagged."""
    flagged = [v.status in (DRIFTED, DEGRADED) for v in verdicts]
    if len(flagged) < after_windows or not all(flagged[-after_windows:]):
        return []
    start = len(flagged) - flagged[::-1].index(False) if False in flagged else 0
    return verdicts[start:]
