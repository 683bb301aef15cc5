"""The reference profile of a model version: what 'normal' looks like for it."""

import dagster as dg

from monitoring_assets.partitions import model_partitions
from resources import MlflowRegistryResource, MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.lineage import profile_version
from watchkeeper.privacy.sensitive import SensitiveColumns
from watchkeeper.reference import ModelReference, build_reference
from watchkeeper.security.audit import CHAMPION_PROFILED
from watchkeeper.store import StoredProfile
from watchkeeper.tables import markdown_table
from watchkeeper.telemetry import evaluation_span


@dg.asset(
    partitions_def=model_partitions,
    group_name="monitoring",
    kinds={"mlflow", "sql"},
    description="Per model: a small, mergeable profile of the champion's training data, the champion's "
                "performance on its validation data (the bar windows are held to), permutation importance "
                "of each feature, and a CBPE estimator calibrated on the validation data.",
)
def reference_profile(context: dg.AssetExecutionContext, mlflow_registry: MlflowRegistryResource,
                      monitoring_store: MonitoringStoreResource,
                      monitoring_config: MonitoringConfigResource) -> dg.MaterializeResult:
    registry = mlflow_registry.registry()
    model = context.partition_key
    champion = registry.champions().get(model)
    if champion is None:
        raise dg.Failure(f"model {model!r} has no champion version in the MLflow registry")
    with evaluation_span("reference_profile", model, champion.version, "reference") as step:
        train, validation = registry.reference_frames(champion)
        step.set(rows=len(train), validation_rows=len(validation))
        configured = monitoring_config.load().for_model(model).privacy.sensitive
        sensitive = SensitiveColumns(configured.columns | champion.sensitive, configured.min_count)
        reference = build_reference(model, champion.version, champion.task, train, validation,
                                    registry.load_model(champion), sensitive)
        store, stored = monitoring_store.store(), StoredProfile(model, champion.version, champion.task,
                                                                *reference.to_stored())
        store.put_profile(model, champion.version, champion.task, stored.profile, stored.reference)
    version = profile_version(stored)
    store.audit(CHAMPION_PROFILED, model, f"dagster:{context.job_name}", context.run_id, model,
                details={"model_version": champion.version, "profile_version": version})
    return dg.MaterializeResult(data_version=dg.DataVersion(version), metadata={
        "model_version": champion.version,
        "profile_version": version,
        "task": champion.task,
        "reference_rows": len(train),
        "features": dg.MetadataValue.md(_feature_table(reference)),
        "reference_performance": dg.MetadataValue.md(
            markdown_table([m.to_dict() for m in reference.metrics.values()], ["name", "value", "lower", "upper"])),
    })


def _feature_table(reference: ModelReference) -> str:
    rows = [{"feature": f.name, "kind": f.kind, "importance": reference.importance.get(f.name),
             "missing_rate": f.missing_rate,
             "mean": f.mean, "std": f.std,
             "min": f.min, "max": f.max, "categories": len(f.categories or {}) or None}
            for f in reference.profile.features.values()]
    return markdown_table(rows, ["feature", "kind", "importance", "missing_rate", "mean", "std", "min", "max", "categories"])
