"""The inputs Watchkeeper does not produce: predictions from serving, and labels.

Both are external assets; the inference sensor records a materialization for each file
that lands, so the UI shows when data arrived and lineage starts at the source.
"""

import dagster as dg

from monitoring_assets.partitions import daily_windows

inference_log = dg.AssetSpec(
    "inference_log",
    description="Predictions logged by serving, one Parquet file per model and prediction day.",
    partitions_def=daily_windows,
    group_name="sources",
    kinds={"parquet"},
)

labels = dg.AssetSpec(
    "labels",
    description="Ground-truth labels, one Parquet file per model and *arrival* day; they join "
                "predictions by prediction_id whenever they arrive.",
    partitions_def=daily_windows,
    group_name="sources",
    kinds={"parquet"},
)
