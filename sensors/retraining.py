"""Starts retrain_model for a model whose problem has persisted, once per champion version.

It reads verdicts from the monitoring store rather than Dagster events, so it sees every
window of every model whatever the order in which runs finished. A model whose stored
verdicts cannot be read is skipped and named in the tick's log; the others go on.
"""

from datetime import date, timedelta

import dagster as dg

from monitoring_assets.retraining import retrain_model
from resources import MonitoringConfigResource, MonitoringStoreResource
from sensors.skips import log_skipped
from watchkeeper.config import MonitoringConfig
from watchkeeper.health import DEGRADED, DRIFTED
from watchkeeper.history import HISTORY_DAYS
from watchkeeper.messages import one_line
from watchkeeper.store import MonitoringStore, StoredProfile, StoredVerdict


@dg.sensor(job=retrain_model, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Retrains a model when its last `retraining.after_windows` verdicts (deploy/monitoring.yaml) "
                       "are all drifted or degraded; one attempt per champion version. Skips and reports a model "
                       "whose verdicts cannot be read.")
def retraining_sensor(context: dg.SensorEvaluationContext, monitoring_store: MonitoringStoreResource,
                      monitoring_config: MonitoringConfigResource) -> dg.SensorResult:
    store, config = monitoring_store.store(), monitoring_config.load()
    try:
        profiles = store.latest_profiles()
    except ValueError as e:            # a stored profile that is not JSON: no model can be judged
        context.log.error(f"the store's reference profiles cannot be read: {e}")
        return dg.SensorResult(skip_reason=f"the store's reference profiles cannot be read: {e}")
    requests, skipped = [], {}
    for model, stored in profiles.items():
        try:
            request = _retraining(store, config, model, stored)
        except (AttributeError, KeyError, TypeError, ValueError) as e:    # this model's rows only
            skipped[model] = f"its verdicts cannot be read ({type(e).__name__}: {one_line(e)})"
            continue
        if request is not None:
            requests.append(request)
    notes = ["no problem has persisted long enough"]
    if line := log_skipped(context, "models", skipped):
        notes.append(line)
    return dg.SensorResult(run_requests=requests, skip_reason=None if requests else "; ".join(notes))


def _retraining(store: MonitoringStore, config: MonitoringConfig, model: str,
                stored: StoredProfile) -> dg.RunRequest | None:
    """The retrain_model run for `model`, if its problem has persisted."""
    verdicts = [v for v in store.verdicts(model, since=_look_back(store.latest_window(model)))
                if v.version == stored.version]
    persisting = _persisting_problem(verdicts, config.for_model(model).retraining.after_windows)
    if not persisting:
        return None
    signals = {r["signal"] for v in persisting for r in v.reasons}
    run_config = {"ops": {"retrain_model_op": {"config": {
        "model": model, "windows": [v.window for v in persisting], "inputs_stable": "data_drift" not in signals,
        "concept_drift": "concept_drift" in signals}}}}
    return dg.RunRequest(run_key=f"retrain:{model}:{stored.version}", run_config=run_config,
                         tags={"model": model, "model_version": stored.version})


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
