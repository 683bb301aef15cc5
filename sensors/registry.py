"""Turns MLflow registry changes into monitored models and fresh reference profiles."""

import json

import dagster as dg

from monitoring_assets.jobs import profile_job
from monitoring_assets.partitions import model_partitions
from resources import MlflowRegistryResource


@dg.sensor(job=profile_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Adds every registered model with a `champion` alias (or the watchkeeper.monitored "
                       "tag) as a partition, and profiles it whenever its champion version changes.")
def registry_sensor(context: dg.SensorEvaluationContext, mlflow_registry: MlflowRegistryResource) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    champions = mlflow_registry.registry().champions()
    known = set(context.instance.get_dynamic_partitions(model_partitions.name))
    new_models = sorted(set(champions) - known)
    changed = {name: c.version for name, c in champions.items() if seen.get(name) != c.version}
    return dg.SensorResult(
        dynamic_partitions_requests=[model_partitions.build_add_request(new_models)] if new_models else [],
        run_requests=[dg.RunRequest(partition_key=name, run_key=f"{name}:{version}", tags={"model_version": version})
                      for name, version in sorted(changed.items())],
        cursor=json.dumps({**seen, **changed}, sort_keys=True),
    )
