"""performance_metrics: realised performance per window from whatever labels have arrived, and
estimated performance (CBPE) from the probabilities alone, so a window has a number before its
labels land."""

import dagster as dg

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS
from monitoring_assets.windows import ALL_PROFILES, SPEC as WINDOW_SPEC
from watchkeeper.estimation import estimation_error
from watchkeeper.monitor import ModelWindow
from watchkeeper.tables import markdown_table

# Window d's labels arrive on days d .. d + MAX_LABEL_DELAY_DAYS.
LATE_LABELS = dg.AssetDep(labels, partition_mapping=dg.TimeWindowPartitionMapping(end_offset=MAX_LABEL_DELAY_DAYS))
TABLE = ["model", "labelled", "label_completeness", "metric", "value", "lower", "upper", "estimated",
         "estimate_error", "reference"]

SPEC = dg.AssetSpec(
    "performance_metrics",
    deps=[WINDOW_SPEC.key, LATE_LABELS, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: classification or regression metrics with bootstrap confidence "
                "intervals over the labelled predictions, per configured segment too, label completeness, "
                "and CBPE estimates (estimated_*) from the probabilities with their error once labels land. "
                "Recomputed when more labels land.",
)


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    measured = [o for o in outcomes if o.metrics is not None]
    rows = [_row(o) for o in measured]
    segments = [{"model": o.model, **s} for o in measured for s in o.metrics.segments]
    return {
        "min_label_completeness": min((r["label_completeness"] for r in rows), default=0.0),
        "metrics": dg.MetadataValue.md(markdown_table(rows, TABLE)),
        "segments": dg.MetadataValue.md(markdown_table(segments, ["model", "segment", "metric", "value", "lower",
                                                                  "upper"])),
    }


def _row(outcome: ModelWindow) -> dict:
    found, primary = outcome.metrics, outcome.reference.primary_metric
    realised = next(v for v in found.realised if v.name == primary)
    estimate = next((e for e in found.estimated if e.name == primary), None)
    error = estimation_error(found.estimated, found.realised).get(primary) if estimate and found.n_labelled else None
    return {"model": outcome.model, "labelled": found.n_labelled, "label_completeness": found.n_labelled / found.n_rows,
            "metric": primary, "value": realised.value, "lower": realised.lower, "upper": realised.upper,
            "estimated": estimate.value if estimate else None, "estimate_error": error,
            "reference": outcome.reference.metrics[primary].value}
