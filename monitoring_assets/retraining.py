"""The retrain_model job: retrain (or first recalibrate) one model, then let the gate decide."""

import dagster as dg

from resources import (
    AlertingResource,
    FeastResource,
    InferenceLogResource,
    MlflowRegistryResource,
    MonitoringConfigResource,
    MonitoringStoreResource,
)
from watchkeeper.alerting.builder import alert_links
from watchkeeper.problems import ProblemLog
from watchkeeper.retraining.approval import approval_alert
from watchkeeper.retraining.cycle import audit_outcome, run_retraining
from watchkeeper.retraining.gate import NEEDS_APPROVAL
from watchkeeper.security.audit import Actor
from watchkeeper.security.residency import ResidencyError, audit_refusal


class RetrainConfig(dg.Config):
    """Which model, and the windows whose labelled rows join its training data."""

    model: str
    windows: list[str]
    inputs_stable: bool = False   # no data drift in those windows: recalibration is tried first
    concept_drift: bool = False   # those windows raised concept drift: `auto` trains on recent rows only


@dg.op(description="Build the training set, train a challenger, register it in MLflow and run the gate; "
                   "a challenger needing approval opens a promotion ticket.")
def retrain_model_op(context: dg.OpExecutionContext, config: RetrainConfig, mlflow_registry: MlflowRegistryResource,
                     drop_folder: InferenceLogResource, monitoring_store: MonitoringStoreResource,
                     monitoring_config: MonitoringConfigResource, alerting: AlertingResource,
                     feature_store: FeastResource) -> dict:
    policy = monitoring_config.load().for_model(config.model).retraining.policy
    store, actor = monitoring_store.store(), Actor(f"dagster:{context.job_name}", context.run_id)
    try:
        outcome = run_retraining(mlflow_registry.registry(feature_store.features()), drop_folder.log(), config.model,
                                 config.windows, policy, config.inputs_stable, config.concept_drift)
    except ResidencyError as error:   # MLflow outside the policy: nothing was sent, and that is audited
        audit_refusal(store, error, actor, config.model)
        raise
    audit_outcome(store, outcome, actor)
    final = outcome.final
    if final.status == NEEDS_APPROVAL:
        _ask_for_approval(context, monitoring_store, alerting, config, str(final.challenger.version), final.decision.reason)
    context.add_output_metadata({"status": final.status, "action": final.action,
                                 "challenger_version": str(final.challenger.version),
                                 "reason": final.decision.reason, "outcome": dg.MetadataValue.json(outcome.to_dict())})
    return outcome.to_dict()


def _ask_for_approval(context: dg.OpExecutionContext, monitoring_store: MonitoringStoreResource,
                      alerting: AlertingResource, config: RetrainConfig, version: str, reason: str) -> None:
    """A challenger won the gate but policy wants a person: record the change and open its ticket."""
    links = alert_links(alerting.dagster_base(), context.run_id, alerting.mlflow_base(), config.model, version,
                        asset="retrain_model")
    alert = approval_alert(config.model, version, config.windows[-1], reason, links)
    ProblemLog(monitoring_store.store()).record(config.model, version, alert.window, [alert], alerting.policy(),
                                                latest=False, verdict=False)


@dg.job(description="Retrain (or first recalibrate) one model on recent labels; promote only through the gate. "
                    "Started by the retraining sensor, or by hand from the launchpad with the same config.")
def retrain_model():
    retrain_model_op()
