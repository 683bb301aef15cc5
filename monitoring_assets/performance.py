"""Realised performance per window from whatever labels have arrived, and estimated performance
(CBPE) from the probabilities alone, so a window has a number before its labels land."""

import dagster as dg
import numpy as np
import pandas as pd

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS, daily_windows
from monitoring_assets.windows import ALL_PROFILES, production_window
from resources import InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.estimation import CBPE, estimation_error
from watchkeeper.performance import PRIMARY_METRIC, MetricValue, compute_metrics, segment_metrics
from watchkeeper.store import StoredProfile
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span

# Window d's labels arrive on days d .. d + MAX_LABEL_DELAY_DAYS.
LATE_LABELS = dg.AssetDep(labels, partition_mapping=dg.TimeWindowPartitionMapping(end_offset=MAX_LABEL_DELAY_DAYS))
ESTIMATED = "estimated_"
TABLE = ["model", "labelled", "label_completeness", "metric", "value", "lower", "upper", "estimated",
         "estimate_error", "reference"]


@dg.asset(
    partitions_def=daily_windows,
    deps=[production_window, LATE_LABELS, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: classification or regression metrics with bootstrap confidence "
                "intervals over the labelled predictions, per configured segment too, label completeness, "
                "and CBPE estimates (estimated_*) from the probabilities with their error once labels land. "
                "Recomputed when more labels land.",
)
def performance_metrics(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                        monitoring_store: MonitoringStoreResource,
                        monitoring_config: MonitoringConfigResource) -> dg.MaterializeResult:
    day, store, log, config = context.partition_key, monitoring_store.store(), drop_folder.log(), monitoring_config.load()
    rows, segments = [], []
    for model, stored in store.latest_profiles().items():
        with evaluation_span("performance_metrics", model, stored.version, day) as step:
            window = log.read_window(model, day)
            step.set(rows=0 if window is None else len(window))
            if window is None or window.empty:
                continue
            joined = window.merge(log.read_labels(model), on="prediction_id", how="inner")
            step.set(labelled=len(joined))
            realised = _realised(stored, joined)
            estimated = _estimated(stored, window)
            store.put_metrics(model, day, stored.version,
                              [v.to_dict() for v in realised] + [{**e.to_dict(), "name": ESTIMATED + e.name} for e in estimated],
                              len(joined), len(window))
            rows.append(_row(model, stored, realised, estimated, len(joined), len(window)))
            model_segments = [row for column in config.for_model(model).segments
                              for row in _segment_rows(model, column, stored, joined)]
            store.put_segments(model, day, stored.version, model_segments)
            segments += model_segments
    context.log.info(f"{day}: metrics for {len(rows)} models")
    return dg.MaterializeResult(metadata={
        "min_label_completeness": min((r["label_completeness"] for r in rows), default=0.0),
        "metrics": dg.MetadataValue.md(markdown_table(rows, TABLE)),
        "segments": dg.MetadataValue.md(markdown_table(segments, ["model", "segment", "metric", "value", "lower", "upper"])),
    })


def _proba(stored: StoredProfile, frame: pd.DataFrame) -> np.ndarray | None:
    classes = stored.reference["classes"]
    return frame[[f"proba_{c}" for c in classes]].to_numpy(dtype=np.float64) if classes else None


def _realised(stored: StoredProfile, joined: pd.DataFrame) -> list[MetricValue]:
    return compute_metrics(stored.task, joined["label"], joined["prediction"], _proba(stored, joined),
                           stored.reference["classes"])


def _estimated(stored: StoredProfile, window: pd.DataFrame) -> list[MetricValue]:
    """CBPE on every prediction of the window, labelled or not; none for regressors."""
    if not stored.reference.get("cbpe"):
        return []
    return CBPE.from_dict(stored.reference["cbpe"]).estimate(_proba(stored, window), window["prediction"].to_numpy())


def _row(model: str, stored: StoredProfile, realised: list[MetricValue], estimated: list[MetricValue],
         n_labelled: int, n_rows: int) -> dict:
    primary = next(v for v in realised if v.name == PRIMARY_METRIC[stored.task])
    estimate = next((e for e in estimated if e.name == primary.name), None)
    error = estimation_error(estimated, realised).get(primary.name) if estimate and n_labelled else None
    return {"model": model, "labelled": n_labelled, "label_completeness": n_labelled / n_rows,
            "metric": primary.name, "value": primary.value, "lower": primary.lower, "upper": primary.upper,
            "estimated": estimate.value if estimate else None, "estimate_error": error,
            "reference": stored.reference["metrics"][primary.name]["value"]}


def _segment_rows(model: str, column: str, stored: StoredProfile, joined: pd.DataFrame) -> list[dict]:
    if column not in joined.columns or joined.empty:
        return []
    classes = stored.reference["classes"]
    by_segment = segment_metrics(stored.task, joined, column, classes=classes,
                                 proba_columns=[f"proba_{c}" for c in classes] if classes else None)
    primary = PRIMARY_METRIC[stored.task]
    return [{"model": model, "segment": f"{column}={value}", **m.to_dict(), "metric": m.name}
            for value, values in by_segment.items() for m in values if m.name == primary]
