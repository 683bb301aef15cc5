"""Data drift of every model's window against its reference profile."""

import dagster as dg

from monitoring_assets.partitions import daily_windows
from monitoring_assets.quality import blocked_models, skip_drift
from monitoring_assets.windows import ALL_PROFILES, production_window
from resources import InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.drift import DriftInputError, evaluate_drift
from watchkeeper.multivariate import load_detector
from watchkeeper.plots import drift_histograms, markdown_image
from watchkeeper.profile import ReferenceProfile
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span

# Pictures cost ~0.3 s each: draw them for the most drifted models only, so a window of
# thousands of models stays cheap (the summary table still lists every model).
MAX_PLOTTED_MODELS = 10
FEATURE_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "p_adjusted", "effect_size", "effect_metric", "drifted"]


@dg.asset(
    partitions_def=daily_windows,
    deps=[production_window, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: a univariate test per feature (KS for numeric, chi-square for "
                "categorical, a missing-rate test for both), Benjamini-Hochberg across the window's signals "
                "and an effect floor (Wasserstein in reference sds, Jensen-Shannon for categories); the "
                "dataset drifts by the rule in docs/drift.md.",
)
def drift_report(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                 monitoring_store: MonitoringStoreResource,
                 monitoring_config: MonitoringConfigResource) -> dg.MaterializeResult:
    day, store, log, config = context.partition_key, monitoring_store.store(), drop_folder.log(), monitoring_config.load()
    summary, reports, blocked = [], {}, blocked_models(store, day)
    for model, stored in store.latest_profiles().items():
        with evaluation_span("drift_report", model, stored.version, day) as step:
            frame = log.read_window(model, day)
            step.set(rows=0 if frame is None else len(frame))
            if frame is None or frame.empty:
                continue
            if model in blocked:
                context.log.warning(f"{model} {day}: no drift report, the window failed data quality")
                summary.append(skip_drift(store, model, day, stored.version, blocked[model]))
                continue
            try:
                report = evaluate_drift(ReferenceProfile.from_dict(stored.profile), frame,
                                        config.for_model(model).drift).to_dict()
            except DriftInputError as error:
                step.fail(error)
                context.log.error(f"{model} {day}: {error}")
                summary.append({"model": model, "error": str(error)})
                continue
            if stored.reference.get("pca_detector"):
                joint = load_detector(stored.reference["pca_detector"]).score(frame[stored.reference["features"]])
                report["multivariate"] = [joint.to_dict()]
            store.put_drift(model, day, stored.version, report)
            step.set(dataset_drift=report["dataset_drift"], drifted_features=len(report["drifted_features"]))
            summary.append({"model": model, "version": stored.version, "rows": report["n_current"],
                            "dataset_drift": report["dataset_drift"], "share_drifted": report["share_drifted"],
                            "drifted_features": ", ".join(report["drifted_features"]),
                            "joint_drift": any(m["drifted"] for m in report.get("multivariate", []))})
            reports[model] = report
    return dg.MaterializeResult(metadata={
        "drifted_models": sum(bool(r.get("dataset_drift")) for r in summary),
        "summary": dg.MetadataValue.md(markdown_table(
            summary, ["model", "version", "rows", "dataset_drift", "share_drifted", "drifted_features", "joint_drift",
                      "error"])),
        "report": dg.MetadataValue.md(_most_drifted_sections(day, reports)),
    })


def _most_drifted_sections(day: str, reports: dict[str, dict]) -> str:
    drifted = sorted((m for m, r in reports.items() if r["dataset_drift"]), key=lambda m: -reports[m]["share_drifted"])
    if not drifted:
        return f"No model's data drifted on {day}."
    shown = drifted[:MAX_PLOTTED_MODELS]
    header = f"{len(drifted)} models drifted on {day}; the {len(shown)} most drifted are shown."
    return "\n\n".join([header] + [_model_section(model, day, reports[model]) for model in shown])


def _model_section(model: str, day: str, report: dict) -> str:
    """Feature table and the reference-vs-current picture of the most drifted features."""
    verdict = "**dataset drift**" if report["dataset_drift"] else "no dataset drift"
    features = sorted(report["features"], key=lambda f: -(f["effect_size"] or 0.0))
    picture = markdown_image(drift_histograms(features, f"{model} {day}: reference vs current"), f"{model} drift")
    return f"### {model} — {verdict}\n\n{picture}\n\n{markdown_table(features, FEATURE_COLUMNS)}"
