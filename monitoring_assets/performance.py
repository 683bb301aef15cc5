"""Realised performance per window, from whatever labels have arrived so far."""

import dagster as dg
import numpy as np

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS, daily_windows
from monitoring_assets.windows import ALL_PROFILES, production_window
from resources import InferenceLogResource, MonitoringStoreResource
from watchkeeper.performance import PRIMARY_METRIC, compute_metrics
from watchkeeper.tables import markdown_table

# Window d's labels arrive on days d .. d + MAX_LABEL_DELAY_DAYS.
LATE_LABELS = dg.AssetDep(labels, partition_mapping=dg.TimeWindowPartitionMapping(end_offset=MAX_LABEL_DELAY_DAYS))


@dg.asset(
    partitions_def=daily_windows,
    deps=[production_window, LATE_LABELS, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: classification or regression metrics with bootstrap confidence "
                "intervals over the labelled predictions, and how complete the window's labels are. "
                "Recomputed when more labels land.",
)
def performance_metrics(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                        monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    day, store, log = context.partition_key, monitoring_store.store(), drop_folder.log()
    rows = []
    for model, stored in store.latest_profiles().items():
        window = log.read_window(model, day)
        if window is None or window.empty:
            continue
        joined = window.merge(log.read_labels(model), on="prediction_id", how="inner")
        classes = stored.reference["classes"]
        proba = joined[[f"proba_{c}" for c in classes]].to_numpy(dtype=np.float64) if classes else None
        values = compute_metrics(stored.task, joined["label"], joined["prediction"], proba, classes)
        store.put_metrics(model, day, stored.version, [v.to_dict() for v in values], len(joined), len(window))
        primary = next(v for v in values if v.name == PRIMARY_METRIC[stored.task])
        reference = stored.reference["metrics"][primary.name]["value"]
        rows.append({"model": model, "labelled": len(joined), "label_completeness": len(joined) / len(window),
                     "metric": primary.name, "value": primary.value, "lower": primary.lower,
                     "upper": primary.upper, "reference": reference})
    context.log.info(f"{day}: metrics for {len(rows)} models")
    return dg.MaterializeResult(metadata={
        "min_label_completeness": min((r["label_completeness"] for r in rows), default=0.0),
        "metrics": dg.MetadataValue.md(markdown_table(
            rows, ["model", "labelled", "label_completeness", "metric", "value", "lower", "upper", "reference"])),
    })
