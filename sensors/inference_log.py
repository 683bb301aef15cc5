"""Turns files landing in the inference drop folder into window evaluations.

New or changed predictions of day d start `evaluate_window` for d; labels arriving on day a
start `refresh_labels` for every window those labels belong to. Whatever is in the drop
folder but cannot be used (stray, hidden or misnamed files, nested folders, impossible dates,
days outside the windows, folders that cannot name a model, links out of the folder,
unreadable label files) is skipped, never raised: it is named in the tick's log and counted
on an observation of `inference_log` or `labels` (drawn in their Plots tab) whenever that
list changes, and every usable file is still scheduled in the same tick. Files of today wait
until the day's window exists.

A run key is made of one day's files only (which files, their times and sizes), so a day
whose files did not change is never asked for again, not even by a sensor turned on with no
cursor after a replay (the daemon launches each run key once), and a new or rewritten file
asks for exactly the runs it needs. The cursor is described in sensors/drop_cursor.py.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import dagster as dg

from monitoring_assets.external import inference_log, labels
from monitoring_assets.jobs import evaluate_window_job, refresh_labels_job
from monitoring_assets.partitions import MAX_LABEL_DELAY_DAYS, daily_windows
from resources import InferenceLogResource
from sensors.drop_cursor import RECENT_DAYS, DropCursor, by_day
from sensors.skips import log_skipped, skipped_observation
from watchkeeper.inference_log import INFERENCE, LABELS, DropFile, InferenceLog, Listing, files_digest
from watchkeeper.lineage import file_version

LABEL_BUDGET_SECONDS = 40.0   # no new arrival day is matched to windows after this; ticks must end within 60 s
SOURCES = {INFERENCE: inference_log.key, LABELS: labels.key}
WHAT = {INFERENCE: "inference files", LABELS: "label files"}
DATA_VERSION_TAG = "dagster/data_version"   # Dagster's tag for an event's data version (external assets)


@dataclass
class LabelMatch:
    """What the new label files of a tick belong to."""

    windows: dict[str, list[DropFile]] = field(default_factory=dict)   # window -> label files with labels for it
    done: dict[str, list[DropFile]] = field(default_factory=dict)      # arrival day matched -> its new files
    unreadable: dict[str, str] = field(default_factory=dict)           # file -> why it could not be read
    complete: bool = True                                              # every changed arrival day was matched


@dg.sensor(jobs=[evaluate_window_job, refresh_labels_job], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Watches the inference log and labels drop folders; evaluates new windows and "
                       "refreshes the metrics of windows whose late labels arrived. Skips and reports "
                       "whatever it cannot use.")
def inference_sensor(context: dg.SensorEvaluationContext, drop_folder: InferenceLogResource) -> dg.SensorResult:
    cursor, log = DropCursor.load(context.cursor), drop_folder.log()
    today = datetime.now(timezone.utc).date()
    # No window exists before the first day has ended: then every file waits.
    first, last = daily_windows.get_first_partition_key(), daily_windows.get_last_partition_key() or ""
    horizon = (today - timedelta(days=RECENT_DAYS)).isoformat()
    listings = {stream: log.scan(stream, first, last, today.isoformat()) for stream in SOURCES}
    predictions = listings[INFERENCE].files
    new_days = cursor.seen(INFERENCE).changes(predictions, horizon)
    matched = match_labels(log, cursor.seen(LABELS).changes(listings[LABELS].files, horizon), predictions)
    of_day = by_day(predictions)
    runs = [dg.RunRequest(job_name=evaluate_window_job.name, partition_key=day,
                          run_key=f"{day}@{files_digest(of_day[day])}") for day in sorted(new_days)]
    runs += [dg.RunRequest(job_name=refresh_labels_job.name, partition_key=day,
                           run_key=f"{day}@labels:{files_digest(files)}")
             for day, files in sorted(matched.windows.items()) if day not in new_days]
    arrived = [_arrival(inference_log.key, f) for files in new_days.values() for f in files]
    arrived += [_arrival(labels.key, f) for files in matched.done.values() for f in files
                if f.name not in matched.unreadable]

    unreadable = _still_unreadable(cursor, listings, matched)
    notes, observations, reported = _report(context, cursor, listings, unreadable)
    if not matched.complete:
        notes.append(f"matched the labels of {len(matched.done)} arrival days within {LABEL_BUDGET_SECONDS:.0f} s; "
                     "the others are next")
        context.log.info(notes[-1])
    seen = {INFERENCE: cursor.seen(INFERENCE).after(predictions, new_days, horizon, complete=True),
            LABELS: cursor.seen(LABELS).after(listings[LABELS].files, matched.done, horizon, matched.complete)}
    return dg.SensorResult(run_requests=runs, asset_events=arrived + observations,
                           cursor=DropCursor(seen, unreadable, reported).dump(),
                           skip_reason=None if runs else "; ".join(["no new or changed files", *notes]))


def match_labels(log: InferenceLog, changed: dict[str, list[DropFile]], predictions: list[DropFile]) -> LabelMatch:
    """The windows the new label files hold labels for, arrival day by arrival day (oldest
    first) until LABEL_BUDGET_SECONDS are spent; at least one day per tick, so it always moves."""
    of_model: dict[str, list[DropFile]] = defaultdict(list)
    for file in predictions:
        of_model[file.model].append(file)
    match, started = LabelMatch(), time.monotonic()
    for day in sorted(changed):
        if match.done and time.monotonic() - started > LABEL_BUDGET_SECONDS:
            match.complete = False
            break
        for file in changed[day]:
            found = log.label_days(file, of_model[file.model], MAX_LABEL_DELAY_DAYS)
            for window in found.days:
                match.windows.setdefault(window, []).append(file)
            match.unreadable |= {s.name: s.reason for s in found.unreadable}
        match.done[day] = changed[day]
    return match


def _still_unreadable(cursor: DropCursor, listings: dict[str, Listing], matched: LabelMatch) -> dict[str, list[str]]:
    """Files found unreadable now, and those found before that have not changed since (they are
    not read again until they change, and stay reported until then)."""
    versions = {f.name: f"{f.mtime_ns}:{f.size}" for listing in listings.values() for f in listing.files}
    kept = {name: entry for name, entry in cursor.unreadable.items() if versions.get(name) == entry[0]}
    return kept | {name: [versions.get(name, ""), reason] for name, reason in matched.unreadable.items()}


def _report(context: dg.SensorEvaluationContext, cursor: DropCursor, listings: dict[str, Listing],
            unreadable: dict[str, list[str]]) -> tuple[list[str], list[dg.AssetObservation], dict[str, str]]:
    """Log each stream's skipped files and waiting files; observe its source asset when the list
    of skipped files changed. Returns the log lines, the observations and the new report digests."""
    notes, observations, reported = [], [], {}
    for stream, key in SOURCES.items():
        listing = listings[stream]
        skipped = {s.name: s.reason for s in listing.skipped}
        skipped |= {name: reason for name, (_, reason) in unreadable.items() if name.startswith(f"{stream}/")}
        if line := log_skipped(context, WHAT[stream], skipped):
            notes.append(line)
        if listing.waiting:
            context.log.info(f"{len(listing.waiting)} {WHAT[stream]} of {listing.waiting[0].day} wait for its window")
        events, reported[stream] = skipped_observation(key, "files", skipped, cursor.reported.get(stream))
        observations += events
    return notes, observations, reported


def _arrival(key: dg.AssetKey, file: DropFile) -> dg.AssetMaterialization:
    """A file that landed, with the version of its bytes as its data version: lineage starts at the
    exact file a window was read from (a file that vanished meanwhile is versioned by its stat)."""
    try:
        version = file_version(file.path)
    except OSError:
        version = f"unreadable:{file.mtime_ns}:{file.size}"
    return dg.AssetMaterialization(asset_key=key, partition=file.day, tags={DATA_VERSION_TAG: version},
                                   metadata={"model": file.model, "path": dg.MetadataValue.path(str(file.path)),
                                             "data_version": version})
