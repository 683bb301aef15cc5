"""Turns MLflow registry changes into monitored models and fresh reference profiles.

A registered model meant to be monitored that cannot be (its name cannot be a partition key,
it has no version, an unknown task, an entry that cannot be read) is skipped: named with its
reason in the tick's log and counted on an observation of reference_profile whenever that
list changes. Every other model is added and profiled in the same tick.
"""

import json

import dagster as dg

from monitoring_assets.jobs import profile_job
from monitoring_assets.partitions import model_partitions
from monitoring_assets.reference import reference_profile
from resources import MlflowRegistryResource
from sensors.skips import log_skipped, skipped_observation


@dg.sensor(job=profile_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Adds every registered model with a `champion` alias (or the watchkeeper.monitored "
                       "tag) as a partition, and profiles it whenever its champion version changes. Skips "
                       "and reports the registry entries it cannot use.")
def registry_sensor(context: dg.SensorEvaluationContext, mlflow_registry: MlflowRegistryResource) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, str] = cursor.get("versions", {})
    monitored = mlflow_registry.registry().monitored()
    known = set(context.instance.get_dynamic_partitions(model_partitions.name))
    new_models = sorted(set(monitored.champions) - known)
    changed = {name: c.version for name, c in monitored.champions.items() if seen.get(name) != c.version}
    notes = ["no champion changed"]
    if line := log_skipped(context, "registered models", monitored.skipped):
        notes.append(line)
    observed, reported = skipped_observation(reference_profile.key, "models", monitored.skipped, cursor.get("reported"))
    return dg.SensorResult(
        dynamic_partitions_requests=[model_partitions.build_add_request(new_models)] if new_models else [],
        run_requests=[dg.RunRequest(partition_key=name, run_key=f"{name}:{version}", tags={"model_version": version})
                      for name, version in sorted(changed.items())],
        asset_events=observed,
        cursor=json.dumps({"versions": {**seen, **changed}, "reported": reported}, sort_keys=True),
        skip_reason=None if changed or new_models else "; ".join(notes),
    )
