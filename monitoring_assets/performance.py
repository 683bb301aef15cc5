"""performance_metrics: realised performance per window from whatever labels have arrived, and
estimated performance (CBPE) from the probabilities alone, so a window has a number before its
labels land."""

import dagster as dg

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS
from monitoring_assets.windows import ALL_PROFILES, SPEC as WINDOW_SPEC
from watchkeeper.monitor import ModelWindow
from watchkeeper.tables import markdown_table

# Window d's labels arrive on days d .. d + MAX_LABEL_DELAY_DAYS.
LATE_LABELS = dg.AssetDep(labels, partition_mapping=dg.TimeWindowPartitionMapping(end_offset=MAX_LABEL_DELAY_DAYS))

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


# Narrow enough to fit the page beside the partition list: a value and its interval share a cell, one
# row per metric, short headers (a header is as wide as its text) and a short note.
METRICS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("model", "string"),
    dg.TableColumn("metric", "string", description="every metric the model's reference profile lists"),
    dg.TableColumn("realised", "string", description="on the labelled predictions, with its 90% bootstrap interval"),
    dg.TableColumn("reference", "string", description="on the reference (validation) data"),
    dg.TableColumn("cbpe", "string", description="estimated from the probabilities alone (CBPE)"),
    dg.TableColumn("labelled", "string", description="labelled predictions / all, so far"),
    dg.TableColumn("note", "string", description="CBPE is blind to concept drift: it assumes P(label | "
                                                 "probabilities) is unchanged; the note marks an estimate outside the "
                                                 "realised interval"),
])
# Short, so the table fits the page; the column's description says why.
CBPE_BLIND = "CBPE is blind to concept drift"
MAX_PLOTTED_MODELS = 50   # numeric entries per model (the Plots tab); beyond this the table holds them


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    measured = [o for o in outcomes if o.metrics is not None]
    rows = [row for o in measured for row in _rows(o)]
    segments = [{"model": o.model, **s} for o in measured for s in o.metrics.segments]
    trends = {f"{o.model} {o.reference.primary_metric}": dg.MetadataValue.float(float(_number(v)))
              for o in measured[:MAX_PLOTTED_MODELS] if (v := _primary(o).value) is not None}
    return {
        "min_label_completeness": round(min((o.metrics.n_labelled / o.metrics.n_rows for o in measured), default=0.0), 3),
        **trends,
        "metrics": dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=METRICS_SCHEMA),
        "segments": dg.MetadataValue.md(markdown_table(segments, ["model", "segment", "metric", "value", "lower",
                                                                  "upper"])),
    }


def _primary(outcome: ModelWindow):
    return next(v for v in outcome.metrics.realised if v.name == outcome.reference.primary_metric)


def _rows(outcome: ModelWindow) -> list[dict]:
    """One row per metric of the model: realised with its interval, reference, CBPE estimate, and a
    note when the estimate falls outside the realised interval (CBPE cannot see concept drift)."""
    found = outcome.metrics
    estimates = {e.name: e.value for e in found.estimated}
    labelled = f"{found.n_labelled} / {found.n_rows}"
    rows = []
    for value in found.realised:
        reference = outcome.reference.metrics.get(value.name)
        estimate = estimates.get(value.name)
        blind = (estimate is not None and value.lower is not None and value.upper is not None
                 and not value.lower <= estimate <= value.upper)
        rows.append({"model": outcome.model, "metric": value.name, "realised": _interval(value),
                     "reference": _number(reference.value if reference else None), "cbpe": _number(estimate),
                     "labelled": labelled, "note": CBPE_BLIND if blind else ""})
    return rows


def _interval(value) -> str:
    if value.value is None:
        return "-"
    interval = f" [{_number(value.lower)}, {_number(value.upper)}]" if value.lower is not None else ""
    return _number(value.value) + interval


def _number(x: float | None) -> str:
    """Three significant digits: what a person compares (the store keeps every digit)."""
    return "-" if x is None else f"{x:.3g}"
