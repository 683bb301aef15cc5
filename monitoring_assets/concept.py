"""Concept drift on the stream of prediction errors, resumed day after day per model.

Labels arrive late, so the error stream is ordered by *label arrival*: the labels that land
on day d, joined with their predictions, are the next elements of the model's error stream.
The detector state is kept in the store, so a day never rescans history; an alarm is
attributed to the day it was raised and names the prediction (id, timestamp) it fired on.
While labels lag, a second detector watches the predictions themselves.
"""

import dagster as dg
import numpy as np
import pandas as pd

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS, daily_windows
from monitoring_assets.windows import ALL_PROFILES, production_window
from resources import InferenceLogResource, MonitoringStoreResource
from watchkeeper.concept import AUTO, StreamState, label_alarms, resume
from watchkeeper.performance import REGRESSION
from watchkeeper.store import MonitoringStore, StoredProfile
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span

RECENT_WINDOWS = dg.AssetDep(production_window,
                             partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-MAX_LABEL_DELAY_DAYS))
ERRORS, PREDICTIONS = "errors", "predictions"


@dg.asset(
    partitions_def=daily_windows,
    deps=[labels, RECENT_WINDOWS, ALL_PROFILES],
    group_name="monitoring",
    kinds={"river", "sql"},
    description="Per day and model: the errors of the predictions whose labels arrived that day, fed to "
                "the model's persisted concept-drift detector (watchkeeper stream's `auto`), and that day's "
                "predictions fed to a second detector on the predicted class. Alarms map to prediction ids.",
)
def concept_drift(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                  monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    day, store, log = context.partition_key, monitoring_store.store(), drop_folder.log()
    rows = []
    for model, stored in store.latest_profiles().items():
        with evaluation_span("concept_drift", model, stored.version, day) as step:
            arrived = log.read_arrivals(model, day)
            predictions = log.read_window(model, day)
            errors = _errors(stored, arrived, log, model, day) if arrived is not None else None
            step.set(rows=0 if predictions is None else len(predictions), errors=0 if errors is None else len(errors))
            rows.append({"model": model,
                         "error_alarms": _advance(store, model, day, ERRORS, stored, errors),
                         "prediction_alarms": _advance(store, model, day, PREDICTIONS, stored,
                                                       _predicted_class(stored, predictions))})
    return dg.MaterializeResult(metadata={
        "alarms": sum(r["error_alarms"] + r["prediction_alarms"] for r in rows),
        "detectors": dg.MetadataValue.md(markdown_table(rows, ["model", "error_alarms", "prediction_alarms"])),
    })


def _errors(stored: StoredProfile, arrived: pd.DataFrame, log, model: str, day: str) -> pd.DataFrame | None:
    """Errors of the predictions whose labels arrived today, in prediction order."""
    first = (pd.Timestamp(day) - pd.Timedelta(days=MAX_LABEL_DELAY_DAYS)).strftime("%Y-%m-%d")
    windows = [w for d in log.window_days(model) if first <= d <= day and (w := log.read_window(model, d)) is not None]
    if not windows:
        return None
    joined = pd.concat(windows).merge(arrived[["prediction_id", "label"]], on="prediction_id").sort_values("timestamp")
    if stored.task == REGRESSION:
        values = (joined["prediction"] - joined["label"]).abs()
    else:
        values = (joined["prediction"] != joined["label"]).astype(np.int8)
    return pd.DataFrame({"prediction_id": joined["prediction_id"], "timestamp": joined["timestamp"], "value": values})


def _predicted_class(stored: StoredProfile, window: pd.DataFrame | None) -> pd.DataFrame | None:
    """1 when a classifier predicts its last class (the positive one for binary models)."""
    if window is None or stored.task == REGRESSION:
        return None
    window = window.sort_values("timestamp")
    return pd.DataFrame({"prediction_id": window["prediction_id"], "timestamp": window["timestamp"],
                         "value": (window["prediction"] == stored.reference["classes"][-1]).astype(np.int8)})


def _advance(store: MonitoringStore, model: str, day: str, stream: str, stored: StoredProfile,
             values: pd.DataFrame | None) -> int:
    """Resume the stream's detector from yesterday's state over today's values; store state and alarms."""
    if values is None or values.empty:
        return 0
    saved = store.stream_state(model, stream, stored.version, before=day)
    state = StreamState.from_dict(saved) if saved else None
    new_state, alarms = resume(state, values["value"].to_numpy(), AUTO)
    first = state.n_seen if state else 0
    mapped = label_alarms(alarms, first, values["prediction_id"].tolist(), values["timestamp"].astype(str).tolist())
    store.put_stream(model, day, stream, stored.version, len(values), new_state.to_dict(), mapped)
    return len(mapped)
