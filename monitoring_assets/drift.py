"""Data drift of every model's window against its reference profile."""

import dagster as dg

from monitoring_assets.partitions import daily_windows
from monitoring_assets.windows import ALL_PROFILES, production_window
from resources import InferenceLogResource, MonitoringStoreResource
from watchkeeper.drift import DriftConfig, DriftInputError, evaluate_drift
from watchkeeper.plots import drift_histograms, markdown_image
from watchkeeper.profile import ReferenceProfile
from watchkeeper.tables import markdown_table

FEATURE_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "p_adjusted", "effect_size", "effect_metric", "drifted"]


@dg.asset(
    partitions_def=daily_windows,
    deps=[production_window, ALL_PROFILES],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: a univariate test per feature (KS for numeric, chi-square for "
                "categorical), Benjamini-Hochberg across features and a PSI effect floor; the dataset "
                "drifts by the rule in DriftConfig.",
)
def drift_report(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                 monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    day, store, log = context.partition_key, monitoring_store.store(), drop_folder.log()
    summary, sections = [], []
    for model, stored in store.latest_profiles().items():
        frame = log.read_window(model, day)
        if frame is None or frame.empty:
            continue
        try:
            report = evaluate_drift(ReferenceProfile.from_dict(stored.profile), frame, DriftConfig()).to_dict()
        except DriftInputError as error:
            context.log.error(f"{model} {day}: {error}")
            summary.append({"model": model, "error": str(error)})
            continue
        store.put_drift(model, day, stored.version, report)
        summary.append({"model": model, "version": stored.version, "rows": report["n_current"],
                        "dataset_drift": report["dataset_drift"], "share_drifted": report["share_drifted"],
                        "drifted_features": ", ".join(report["drifted_features"])})
        sections.append(_model_section(model, day, report))
    return dg.MaterializeResult(metadata={
        "drifted_models": sum(bool(r.get("dataset_drift")) for r in summary),
        "summary": dg.MetadataValue.md(markdown_table(
            summary, ["model", "version", "rows", "dataset_drift", "share_drifted", "drifted_features", "error"])),
        "report": dg.MetadataValue.md("\n\n".join(sections)),
    })


def _model_section(model: str, day: str, report: dict) -> str:
    """Feature table and the reference-vs-current picture of the most drifted features."""
    verdict = "**dataset drift**" if report["dataset_drift"] else "no dataset drift"
    features = sorted(report["features"], key=lambda f: -(f["effect_size"] or 0.0))
    picture = markdown_image(drift_histograms(features, f"{model} {day}: reference vs current"), f"{model} drift")
    return f"### {model} — {verdict}\n\n{picture}\n\n{markdown_table(features, FEATURE_COLUMNS)}"
