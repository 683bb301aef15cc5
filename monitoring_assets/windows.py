"""One day of production traffic per model, checked and kept as it arrived."""

import dagster as dg

from monitoring_assets.external import inference_log
from monitoring_assets.partitions import daily_windows
from monitoring_assets.quality import DATA_QUALITY, data_quality_result, validate_window
from monitoring_assets.reference import reference_profile
from resources import InferenceLogResource, MonitoringStoreResource
from watchkeeper.inference_log import window_problems
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span

ALL_PROFILES = dg.AssetDep(reference_profile, partition_mapping=dg.AllPartitionMapping())


@dg.asset(
    partitions_def=daily_windows,
    deps=[inference_log, ALL_PROFILES],
    group_name="monitoring",
    kinds={"parquet"},
    check_specs=[DATA_QUALITY],
    description="Per day, for every monitored model: the predictions of that window, validated "
                "against the model's reference profile. Problems are recorded; rows are never dropped.",
)
def production_window(context: dg.AssetExecutionContext, drop_folder: InferenceLogResource,
                      monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    day, store, log = context.partition_key, monitoring_store.store(), drop_folder.log()
    rows, quality = [], {}
    for model, stored in store.latest_profiles().items():
        with evaluation_span("production_window", model, stored.version, day) as step:
            frame = log.read_predictions(model, day)
            step.set(rows=0 if frame is None else len(frame))
            if frame is None:
                store.put_window(model, day, stored.version, 0, ["no predictions logged"], None)
                rows.append({"model": model, "rows": 0, "problems": "no predictions logged"})
                continue
            problems = window_problems(frame, stored.reference["features"], day)
            step.set(problems=len(problems))
            path = log.write_window(model, day, frame)
            store.put_window(model, day, stored.version, len(frame), problems, str(path))
            quality[model] = validate_window(store, model, day, stored, frame)
            rows.append({"model": model, "version": stored.version, "rows": len(frame), "problems": "; ".join(problems)})
            if problems:
                context.log.warning(f"{model} {day}: {'; '.join(problems)}")
    return dg.MaterializeResult(check_results=[data_quality_result(quality)], metadata={
        "models": len(rows),
        "rows": sum(r["rows"] for r in rows),
        "windows": dg.MetadataValue.md(markdown_table(rows, ["model", "version", "rows", "problems"])),
    })
