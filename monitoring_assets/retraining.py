"""The retrain_model job: retrain (or first recalibrate) one model, then let the gate decide."""

import dagster as dg

from resources import InferenceLogResource, MlflowRegistryResource, MonitoringConfigResource, MonitoringStoreResource
from watchkeeper.retraining.cycle import run_retraining
from watchkeeper.retraining.gate import NEEDS_APPROVAL


class RetrainConfig(dg.Config):
    """Which model, and the windows whose labelled rows join its training data."""

    model: str
    windows: list[str]
    inputs_stable: bool = False   # no data drift in those windows: recalibration is tried first


@dg.op(description="Build the training set, train a challenger, register it in MLflow and run the gate; "
                   "a challenger needing approval opens a promotion ticket.")
def retrain_model_op(context: dg.OpExecutionContext, config: RetrainConfig, mlflow_registry: MlflowRegistryResource,
                     drop_folder: InferenceLogResource, monitoring_store: MonitoringStoreResource,
                     monitoring_config: MonitoringConfigResource) -> dict:
    policy = monitoring_config.load().for_model(config.model).retraining.policy
    outcome = run_retraining(mlflow_registry.registry(), drop_folder.log(), config.model, config.windows,
                             policy, config.inputs_stable)
    final = outcome.final
    if final.status == NEEDS_APPROVAL:
        version = str(final.challenger.version)
        monitoring_store.store().open_alert(
            f"{config.model}:{version}:promotion_approval", config.model, version, "promotion_approval",
            config.windows[-1], {"signal": "promotion_approval", "detail": final.decision.reason})
    context.add_output_metadata({"status": final.status, "action": final.action,
                                 "challenger_version": str(final.challenger.version),
                                 "reason": final.decision.reason, "outcome": dg.MetadataValue.json(outcome.to_dict())})
    return outcome.to_dict()


@dg.job(description="Retrain (or first recalibrate) one model on recent labels; promote only through the gate. "
                    "Started by the retraining sensor, or by hand from the launchpad with the same config.")
def retrain_model():
    retrain_model_op()
