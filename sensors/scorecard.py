"""Redraws the scorecard of each model that a window's verdict flagged, and draws the first
scorecard of a model that has none yet, so every model (a healthy one too) has one.

A flagged name that is not a monitored model (no partition of that name, so no run could be
launched for it) is skipped and named in the tick's log; the other models are redrawn.
"""

import dagster as dg

from monitoring_assets.health import SPEC as HEALTH_SPEC
from monitoring_assets.health import flagged_models
from monitoring_assets.jobs import scorecard_job
from monitoring_assets.partitions import model_partitions
from monitoring_assets.scorecard import model_scorecard
from sensors.skips import log_skipped


@dg.asset_sensor(asset_key=HEALTH_SPEC.key, job=scorecard_job, default_status=dg.DefaultSensorStatus.STOPPED,
                 description="Refreshes model_scorecard for the models a model_health run flagged, and "
                             "draws it once for a model that has none, so thousands of healthy models cost "
                             "nothing here and every model has one.")
def scorecard_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(model_partitions.name))
    flagged = flagged_models(asset_event.asset_materialization.metadata)
    drawn = context.instance.get_materialized_partitions(model_scorecard.key)
    wanted = sorted({m for m in flagged if m in known} | (known - drawn))
    requests = [dg.RunRequest(partition_key=model, run_key=f"{model}@{asset_event.run_id}") for model in wanted]
    line = log_skipped(context, "flagged models", {str(model): "not a monitored model (no partition of that name)"
                                                   for model in flagged if model not in known})
    return dg.SensorResult(run_requests=requests,
                           skip_reason=None if requests else line or "no model flagged")
