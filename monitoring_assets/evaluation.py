"""The window assets of one day, evaluated together by the engine's monitor.

production_window, drift_report, performance_metrics, concept_drift and model_health are five
assets in the UI (their lineage is the audit trail) but one step: the engine's WindowMonitor
reads each model's window once, decodes each reference once, keeps a failure local to its
model, and commits each verdict with its problems and alerts in one transaction. The step runs
whichever of the five a job selects (a label refresh recomputes only performance and health);
each asset's metadata is drawn from the same per-model outcomes by its module. A run may take one
shard of the fleet (run config, monitoring_assets/sharding.py); its metadata says which, and how
long the engine took. A step killed
mid-way is retried (RetryPolicy): what committed is replaced, nothing counted twice.

Lineage carries real versions: each asset's code version is a digest of the engine's source,
production_window's data version is a digest of the day's rows (of every model), and the
derived assets' data versions also cover each model's profile and model version; every
materialization shows the per-model versions (watchkeeper.lineage), as the verdict versions in
the store do.
"""

import os
import time

import dagster as dg

from monitoring_assets import concept, drift, health, performance, windows
from monitoring_assets.partitions import daily_windows
from monitoring_assets.quality import DATA_QUALITY, quality_result
from monitoring_assets.sharding import ShardConfig
from resources import (
    AlertingResource, FeastResource, InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource,
)
from watchkeeper.alerting.builder import alert_links
from watchkeeper.lineage import code_version, combined
from watchkeeper.monitor import CONCEPT, DRIFT, HEALTH, PERFORMANCE, WINDOW, ModelWindow, WindowMonitor
from watchkeeper.security.audit import Actor, record_configuration
from watchkeeper.security.residency import POLICY_ENV
from watchkeeper.tables import markdown_table

PRESENTERS = {windows.SPEC.key: (WINDOW, windows.metadata), drift.SPEC.key: (DRIFT, drift.metadata),
              performance.SPEC.key: (PERFORMANCE, performance.metadata), concept.SPEC.key: (CONCEPT, concept.metadata),
              health.SPEC.key: (HEALTH, health.metadata)}
CHECKS = {DATA_QUALITY.key: quality_result, health.HEALTHY.key: health.healthy_result,
          health.EVALUATED.key: health.evaluated_result}
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


@dg.multi_asset(
    name="evaluate_models",
    specs=[spec.replace_attributes(code_version=code_version())
           for spec in (windows.SPEC, drift.SPEC, performance.SPEC, concept.SPEC, health.SPEC)],
    check_specs=[DATA_QUALITY, health.HEALTHY, health.EVALUATED],
    partitions_def=daily_windows,
    can_subset=True,
    retry_policy=RETRY,
    description="Evaluates one day's window of every monitored model (watchkeeper.monitor).",
)
def evaluate_models(context: dg.AssetExecutionContext, config: ShardConfig, drop_folder: InferenceLogResource,
                    monitoring_store: MonitoringStoreResource, monitoring_config: MonitoringConfigResource,
                    alerting: AlertingResource, feature_store: FeastResource):
    day = context.partition_key
    selected = [key for key in PRESENTERS if key in context.selected_asset_keys]
    links = lambda model, version: alert_links(alerting.dagster_base(), context.run_id, alerting.mlflow_base(),  # noqa: E731
                                               model, version)
    store, actor = monitoring_store.store(), Actor(f"dagster:{context.job_name}", context.run_id)
    record_configuration(store, {"monitoring": monitoring_config.path, "alerting": alerting.policy_path,
                                 "residency": os.environ.get(POLICY_ENV)}, actor)
    monitor = WindowMonitor(store, drop_folder.log(), monitoring_config.load(), alerting.policy(), links, actor,
                            feature_store.features())
    shard, started = config.to_shard(), time.perf_counter()
    outcomes = monitor.evaluate(day, [PRESENTERS[key][0] for key in selected], shard=shard)
    run_facts = {"shard": shard.label(), "engine_seconds": round(time.perf_counter() - started, 3)}
    for outcome in outcomes:
        for stage, reason in outcome.failures.items():
            context.log.error(f"{outcome.model} {day}: {stage} failed: {reason}")
    lineage = lineage_metadata(outcomes)
    for key in selected:
        yield dg.MaterializeResult(asset_key=key, metadata={**PRESENTERS[key][1](day, outcomes), **lineage,
                                                            **run_facts},
                                   data_version=data_version(key, outcomes))
    for key in context.selected_asset_check_keys:
        yield CHECKS[key](outcomes)


def data_version(key: dg.AssetKey, outcomes: list[ModelWindow]) -> dg.DataVersion:
    """The window's version is its rows'; a derived asset's also covers each reference and model."""
    if key == windows.SPEC.key:
        return dg.DataVersion(combined(f"{o.model}:{o.lineage.data_version}" for o in outcomes))
    return dg.DataVersion(combined(f"{o.model}:{sorted(o.lineage.to_dict().items())}" for o in outcomes))


def lineage_metadata(outcomes: list[ModelWindow]) -> dict:
    """Each model's versions, and the engine's code version once: it is the same for every model of
    a run, and a column of it would make this the widest table of the page (Dagster widens every
    metadata value to the widest, pushing the metrics table off a 1600 px page)."""
    rows = [{"model": o.model, "revision": o.revision or "", **o.lineage.to_dict()} for o in outcomes]
    return {"lineage": dg.MetadataValue.md(markdown_table(
                rows, ["model", "model_version", "data_version", "profile_version", "revision"])),
            "code_version": code_version()}
