"""Redraws the scorecard of each model that a window's verdict flagged."""

import dagster as dg

from monitoring_assets.health import SPEC as HEALTH_SPEC
from monitoring_assets.health import flagged_models
from monitoring_assets.jobs import scorecard_job


@dg.asset_sensor(asset_key=HEALTH_SPEC.key, job=scorecard_job, default_status=dg.DefaultSensorStatus.STOPPED,
                 description="Refreshes model_scorecard for the models a model_health run flagged, so "
                             "thousands of healthy models cost nothing here.")
def scorecard_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> list[dg.RunRequest]:
    materialization = asset_event.asset_materialization
    return [dg.RunRequest(partition_key=model, run_key=f"{model}@{asset_event.run_id}")
            for model in flagged_models(materialization.metadata)]
