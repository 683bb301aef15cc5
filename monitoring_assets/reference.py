"""The reference profile of a model version: what 'normal' looks like for it."""

import dagster as dg

from monitoring_assets.partitions import model_partitions
from resources import MlflowRegistryResource, MonitoringStoreResource
from watchkeeper.estimation import CBPE
from watchkeeper.multivariate import PCADriftDetector, dump_detector
from watchkeeper.performance import BINARY, MULTICLASS, compute_metrics
from watchkeeper.profile import fit_profile
from watchkeeper.registry import REFERENCE_TARGET
from watchkeeper.root_cause import feature_importance
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
                      monitoring_store: MonitoringStoreResource) -> dg.MaterializeResult:
    registry = mlflow_registry.registry()
    model = context.partition_key
    champion = registry.champions().get(model)
    if champion is None:
        raise dg.Failure(f"model {model!r} has no champion version in the MLflow registry")
    with evaluation_span("reference_profile", model, champion.version, "reference") as step:
        train, validation = registry.reference_frames(champion)
        step.set(rows=len(train), validation_rows=len(validation))
        features = [c for c in train.columns if c != REFERENCE_TARGET]
        profile = fit_profile(train[features], metadata={"model": model, "version": champion.version})
        estimator = registry.load_model(champion)
        classes = [c.item() for c in estimator.classes_] if champion.task in (BINARY, MULTICLASS) else None
        proba = estimator.predict_proba(validation[features]) if classes else None
        reference_metrics = compute_metrics(champion.task, validation[REFERENCE_TARGET],
                                            estimator.predict(validation[features]), proba, classes)
        importance = feature_importance(estimator, validation[features], validation[REFERENCE_TARGET],
                                        scoring="accuracy" if classes else "neg_mean_absolute_error")
        cbpe = CBPE().fit(proba, validation[REFERENCE_TARGET].to_numpy(), classes).to_dict() if classes else None
        joint = _joint_drift_detector(train[features])
        monitoring_store.store().put_profile(
            model, champion.version, champion.task, profile.to_dict(),
            {"metrics": {m.name: m.to_dict() for m in reference_metrics}, "classes": classes, "features": features,
             "importance": importance, "cbpe": cbpe, "pca_detector": joint},
        )
    return dg.MaterializeResult(metadata={
        "model_version": champion.version,
        "task": champion.task,
        "reference_rows": len(train),
        "features": dg.MetadataValue.md(_feature_table(profile, importance)),
        "reference_performance": dg.MetadataValue.md(
            markdown_table([m.to_dict() for m in reference_metrics], ["name", "value", "lower", "upper"])),
    })


def _joint_drift_detector(reference) -> str | None:
    """PCA reconstruction drift, fitted on the reference rows (a profile keeps none); None when
    the model has too few features for a joint test."""
    try:
        return dump_detector(PCADriftDetector().fit(reference, window_size=len(reference)))
    except ValueError:
        return None


def _feature_table(profile, importance: dict[str, float]) -> str:
    rows = [{"feature": f.name, "kind": f.kind, "importance": importance.get(f.name), "missing_rate": f.missing_rate,
             "mean": f.mean, "std": f.std,
             "min": f.min, "max": f.max, "categories": len(f.categories or {}) or None}
            for f in profile.features.values()]
    return markdown_table(rows, ["feature", "kind", "importance", "missing_rate", "mean", "std", "min", "max", "categories"])
