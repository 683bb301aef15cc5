"""concept_drift: the stream detectors on each model's prediction errors, resumed day after day.

Labels arrive late, so the error stream is ordered by *label arrival*: the labels that land
on day d, joined with their predictions, are the next elements of the model's error stream.
The detector state is kept in the store, so a day never rescans history; an alarm is
attributed to the day it was raised and names the prediction (id, timestamp) it fired on.
While labels lag, a second detector watches the predictions themselves.
"""

import dagster as dg

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS
from monitoring_assets.windows import ALL_PROFILES, SPEC as WINDOW_SPEC
from watchkeeper.monitor import ModelWindow
from watchkeeper.stages import ERRORS, PREDICTIONS
from watchkeeper.tables import markdown_table

RECENT_WINDOWS = dg.AssetDep(WINDOW_SPEC.key,
                             partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-MAX_LABEL_DELAY_DAYS))

SPEC = dg.AssetSpec(
    "concept_drift",
    deps=[labels, RECENT_WINDOWS, ALL_PROFILES],
    group_name="monitoring",
    kinds={"river", "sql"},
    description="Per day and model: the errors of the predictions whose labels arrived that day, fed to "
                "the model's persisted concept-drift detector (watchkeeper stream's `auto`), and that day's "
                "predictions fed to a second detector on the predicted class. Alarms map to prediction ids.",
)


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    rows = [{"model": o.model, "error_alarms": o.alarms.get(ERRORS, 0), "prediction_alarms": o.alarms.get(PREDICTIONS, 0)}
            for o in outcomes if o.alarms]
    return {"alarms": sum(r["error_alarms"] + r["prediction_alarms"] for r in rows),
            "detectors": dg.MetadataValue.md(markdown_table(rows, ["model", "error_alarms", "prediction_alarms"]))}
