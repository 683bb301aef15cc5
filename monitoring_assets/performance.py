"""performance_metrics: realised performance per window from whatever labels have arrived, and
estimated performance (CBPE) from the probabilities alone, so a window has a number before its
labels land."""

import dagster as dg

from monitoring_assets.external import labels
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS
from monitoring_assets.windows import ALL_PROFILES, SPEC as WINDOW_SPEC
from watchkeeper.monitor import ModelWindow
from watchkeeper.stages import WindowMetrics
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


# Both tables fit a 1600 px page beside the partition list (tests/test_browser.py): `metrics` is one row
# per metric, a value and its interval in one cell, short headers (a column is at least as wide as its
# header); what holds for a whole model (its labels so far, the CBPE note) is in `models`, one row a model.
BLIND_MARK = "*"
METRICS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("model", "string"),
    dg.TableColumn("metric", "string", description="every metric the model's reference profile lists"),
    dg.TableColumn("realised", "string", description="on the labelled predictions, with its 90% bootstrap interval"),
    dg.TableColumn("reference", "string", description="on the reference (validation) data"),
    dg.TableColumn("cbpe", "string", description=f"estimated from the probabilities alone (CBPE); {BLIND_MARK} marks an "
                                                 "estimate the realised interval contradicts (see the model's note)"),
])
MODELS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("model", "string"),
    dg.TableColumn("labelled", "string", description="predictions whose label has arrived, of all the window's, so far"),
    dg.TableColumn("note", "string", description="CBPE is blind to concept drift: it assumes P(label | "
                                                 f"probabilities) is unchanged; the note is there when an estimate ({BLIND_MARK}) "
                                                 "falls outside the realised interval by more than two points"),
])
CBPE_BLIND = "CBPE is blind to concept drift"
BLIND_MARGIN = 0.02   # CBPE's metrics (accuracy, precision, recall, F1, ROC AUC) are in [0, 1]: two points
MAX_PLOTTED_MODELS = 50   # numeric entries per model (the Plots tab); beyond this the table holds them


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    measured = [(o, _blind(o)) for o in outcomes if o.metrics is not None]
    segments = [{"model": o.model, **s} for o, _ in measured for s in o.metrics.segments]
    trends = {f"{o.model} {o.reference.primary_metric}": dg.MetadataValue.float(float(_number(v)))
              for o, _ in measured[:MAX_PLOTTED_MODELS] if (v := _primary(o).value) is not None}
    return {
        "min_label_completeness": round(min((o.metrics.n_labelled / o.metrics.n_rows for o, _ in measured),
                                            default=0.0), 3),
        **trends,
        "metrics": dg.MetadataValue.table([dg.TableRecord(r) for o, blind in measured for r in _rows(o, blind)],
                                          schema=METRICS_SCHEMA),
        "models": dg.MetadataValue.table([dg.TableRecord({"model": o.model, "labelled": _labelled(o.metrics),
                                                          "note": CBPE_BLIND if blind else ""}) for o, blind in measured],
                                         schema=MODELS_SCHEMA),
        "segments": dg.MetadataValue.md(markdown_table(segments, ["model", "segment", "metric", "value", "lower",
                                                                  "upper"])),
    }


def _primary(outcome: ModelWindow):
    return next(v for v in outcome.metrics.realised if v.name == outcome.reference.primary_metric)


def _blind(outcome: ModelWindow) -> set[str]:
    """The metrics whose CBPE estimate the realised labels contradict: it lies outside their 90%
    interval by more than BLIND_MARGIN. CBPE assumes P(label | probabilities) is unchanged, so under
    concept drift it keeps estimating the old performance. The margin keeps a perfect window, whose
    bootstrap interval is [1, 1], from calling an estimate of 0.998 a disagreement."""
    estimates = {e.name: e.value for e in outcome.metrics.estimated if e.value is not None}
    return {v.name for v in outcome.metrics.realised
            if (e := estimates.get(v.name)) is not None and v.lower is not None and v.upper is not None
            and not v.lower - BLIND_MARGIN <= e <= v.upper + BLIND_MARGIN}


def _rows(outcome: ModelWindow, blind: set[str]) -> list[dict]:
    """One row per metric of the model: realised with its interval, reference, and the CBPE estimate
    (marked where the realised labels contradict it)."""
    estimates = {e.name: e.value for e in outcome.metrics.estimated}
    rows = []
    for value in outcome.metrics.realised:
        reference = outcome.reference.metrics.get(value.name)
        estimate = _number(estimates.get(value.name)) + (BLIND_MARK if value.name in blind else "")
        rows.append({"model": outcome.model, "metric": value.name, "realised": _interval(value),
                     "reference": _number(reference.value if reference else None), "cbpe": estimate})
    return rows


def _labelled(found: WindowMetrics) -> str:
    share = f" ({found.n_labelled / found.n_rows:.0%})" if found.n_rows else ""
    return f"{found.n_labelled} / {found.n_rows}{share}"


def _interval(value) -> str:
    if value.value is None:
        return "-"
    interval = f" [{_number(value.lower)}, {_number(value.upper)}]" if value.lower is not None else ""
    return _number(value.value) + interval


def _number(x: float | None) -> str:
    """Three significant digits: what a person compares (the store keeps every digit)."""
    return "-" if x is None else f"{x:.3g}"
