"""drift_report: data drift of every model's window against its reference profile."""

import dagster as dg

from monitoring_assets.windows import ALL_PROFILES, SPEC as WINDOW_SPEC
from watchkeeper.monitor import DRIFT, ModelWindow
from watchkeeper.plots import drift_histograms, markdown_image
from watchkeeper.tables import markdown_table, markdown_text

# Pictures cost ~0.3 s each: draw them for the most drifted models only, so a window of
# thousands of models stays cheap (the summary table still lists every model).
MAX_PLOTTED_MODELS = 10
FEATURE_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "p_adjusted", "effect_size", "effect_metric", "drifted"]
SUMMARY_COLUMNS = ["model", "version", "rows", "dataset_drift", "share_drifted", "drifted_features", "joint_drift",
                   "error"]

SPEC = dg.AssetSpec(
    "drift_report",
    deps=[WINDOW_SPEC.key, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: a univariate test per feature (KS for numeric, chi-square for "
                "categorical, a missing-rate test for both), Benjamini-Hochberg across the window's signals "
                "and an effect floor (Wasserstein in reference sds, Jensen-Shannon for categories); the "
                "dataset drifts by the rule in docs/drift.md.",
)


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    summary = [_summary_row(o) for o in outcomes if o.drift or o.drift_blocked or DRIFT in o.failures]
    reports = {o.model: o.drift for o in outcomes if o.drift}
    return {
        "drifted_models": sum(bool(r.get("dataset_drift")) for r in summary),
        "summary": dg.MetadataValue.md(markdown_table(summary, SUMMARY_COLUMNS)),
        "report": dg.MetadataValue.md(_most_drifted_sections(day, reports)),
    }


def _summary_row(outcome: ModelWindow) -> dict:
    row = {"model": outcome.model, "version": outcome.version}
    if outcome.drift_blocked:
        return row | {"error": f"blocked by data quality: {outcome.drift_blocked}"}
    if DRIFT in outcome.failures:
        return row | {"error": outcome.failures[DRIFT]}
    report = outcome.drift
    return row | {"rows": report["n_current"], "dataset_drift": report["dataset_drift"],
                  "share_drifted": report["share_drifted"], "drifted_features": ", ".join(report["drifted_features"]),
                  "joint_drift": any(m["drifted"] for m in report.get("multivariate", []))}


def _most_drifted_sections(day: str, reports: dict[str, dict]) -> str:
    drifted = sorted((m for m, r in reports.items() if r["dataset_drift"]), key=lambda m: -reports[m]["share_drifted"])
    if not drifted:
        return f"No model's data drifted on {day}."
    shown = drifted[:MAX_PLOTTED_MODELS]
    header = f"{len(drifted)} models drifted on {day}; the {len(shown)} most drifted are shown."
    return "\n\n".join([header] + [_model_section(model, day, reports[model]) for model in shown])


def _model_section(model: str, day: str, report: dict) -> str:
    """Feature table and the reference-vs-current picture of the most drifted features; a
    picture that cannot be drawn is replaced by the reason, the table stays."""
    verdict = "**dataset drift**" if report["dataset_drift"] else "no dataset drift"
    features = sorted(report["features"], key=lambda f: -(f["effect_size"] or 0.0))
    try:
        picture = markdown_image(drift_histograms(features, f"{model} {day}: reference vs current"), f"{model} drift")
    except Exception as error:   # a picture must never cost the report of the day
        picture = f"(picture not drawn: {type(error).__name__}: {' '.join(str(error).split())[:200]})"
    return f"### {markdown_text(model)} — {verdict}\n\n{picture}\n\n{markdown_table(features, FEATURE_COLUMNS)}"
