"""Turns files landing in the inference drop folder into window evaluations.

New predictions for day d start `evaluate_window` for d; labels arriving on day a start
`refresh_labels` for every window those labels belong to. The cursor is the newest
modification time seen per stream, so a tick only looks at what is new.
"""

import json

import dagster as dg

from monitoring_assets.external import inference_log, labels
from monitoring_assets.jobs import evaluate_window_job, refresh_labels_job
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS
from resources import InferenceLogResource
from watchkeeper.inference_log import INFERENCE, LABELS, DropFile


@dg.sensor(jobs=[evaluate_window_job, refresh_labels_job], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Watches the inference log and labels drop folders; evaluates new windows and "
                       "refreshes the metrics of windows whose late labels arrived.")
def inference_sensor(context: dg.SensorEvaluationContext, drop_folder: InferenceLogResource) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {INFERENCE: 0, LABELS: 0}
    log = drop_folder.log()
    predictions = [f for f in log.files(INFERENCE) if f.mtime_ns > cursor[INFERENCE]]
    arrivals = [f for f in log.files(LABELS) if f.mtime_ns > cursor[LABELS]]
    new_days = sorted({f.day for f in predictions})
    refresh_days = sorted({day for f in arrivals for day in log.label_days(f.model, f.day, MAX_LABEL_DELAY_DAYS)}
                          - set(new_days))
    runs = [dg.RunRequest(job_name=evaluate_window_job.name, partition_key=day, run_key=_run_key(day, predictions))
            for day in new_days]
    runs += [dg.RunRequest(job_name=refresh_labels_job.name, partition_key=day, run_key=_run_key(day, arrivals))
             for day in refresh_days]
    return dg.SensorResult(
        run_requests=runs,
        asset_events=[_arrival(inference_log.key, f) for f in predictions] + [_arrival(labels.key, f) for f in arrivals],
        cursor=json.dumps({INFERENCE: max([cursor[INFERENCE]] + [f.mtime_ns for f in predictions]),
                           LABELS: max([cursor[LABELS]] + [f.mtime_ns for f in arrivals])}),
    )


def _run_key(day: str, files: list[DropFile]) -> str:
    return f"{day}@{max(f.mtime_ns for f in files)}"


def _arrival(key: dg.AssetKey, file: DropFile) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key=key, partition=file.day,
                                   metadata={"model": file.model, "path": dg.MetadataValue.path(str(file.path))})
