"""Turns Feast registry changes into re-profiles and evaluations of the models that use them.

A monitored model fed by Feast (its reference names a feature service) depends on the
feature views of that service. Between ticks the sensor compares each view's definition
digest and its newest materialised interval (watchkeeper.feature_store.view_states):

- a view whose definition changed (`feast apply`: a new feature, a new source, a new TTL)
  re-profiles every model using it: their training sets are joined again from the new
  definition, so the reference stays what the model's features are now;
- a view that was materialised again evaluates the windows of the days the new interval
  covers (at most the last RECENT_DAYS that have a window), since their features changed.

The first tick records what it sees and starts nothing. A model whose service cannot be
read is skipped and named in the tick's log; a registry that cannot be read skips the tick.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import dagster as dg

from monitoring_assets.jobs import evaluate_window_job, profile_job
from monitoring_assets.partitions import daily_windows
from resources import FeastResource, MonitoringStoreResource
from sensors.skips import log_skipped
from watchkeeper.feature_store import FeastFeatures, ViewState
from watchkeeper.messages import one_line

RECENT_DAYS = 7


@dg.sensor(jobs=[profile_job, evaluate_window_job], minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Watches the Feast registry: re-profiles the models whose feature views were "
                       "re-applied, and evaluates the windows whose features were materialised again.")
def feast_sensor(context: dg.SensorEvaluationContext, feature_store: FeastResource,
                 monitoring_store: MonitoringStoreResource) -> dg.SensorResult | dg.SkipReason:
    features = feature_store.features()
    if features is None:
        return dg.SkipReason("no Feast repository is configured (WATCHKEEPER_FEAST_REPO)")
    try:
        features.refresh()
        states = features.view_states()
    except Exception as error:   # a registry that cannot be read now may be readable next tick
        return dg.SkipReason(f"the Feast registry at {features.repo_path} cannot be read: {one_line(error, 300)}")
    users, skipped = _views_of_models(features, monitoring_store)
    notes = [line] if (line := log_skipped(context, "Feast-fed models", skipped)) else []
    cursor = {name: state.to_dict() for name, state in states.items()}
    if context.cursor is None:
        return dg.SensorResult(cursor=json.dumps(cursor, sort_keys=True),
                               skip_reason="; ".join([f"first look: {len(states)} feature views recorded", *notes]))
    before = {name: ViewState(**state) for name, state in json.loads(context.cursor).items()}
    runs = _reprofiles(states, before, users) + _evaluations(states, before, users)
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor, sort_keys=True),
                           skip_reason=None if runs else "; ".join(["no feature view a model uses changed", *notes]))


def _views_of_models(features: FeastFeatures, monitoring_store: MonitoringStoreResource
                     ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Model -> the feature views its feature service reads; and the models whose service cannot be read."""
    users, skipped = {}, {}
    for model, stored in sorted(monitoring_store.store().latest_profiles().items()):
        service = (stored.reference or {}).get("feature_service")
        if not service:
            continue
        try:
            users[model] = features.views(str(service))
        except ValueError as error:
            skipped[model] = one_line(error, 300)
    return users, skipped


def _reprofiles(states: dict[str, ViewState], before: dict[str, ViewState],
                users: dict[str, list[str]]) -> list[dg.RunRequest]:
    """A profile run for each model one of whose views has a new definition (keyed by those definitions)."""
    changed = {name for name, state in states.items() if name in before
               and state.definition != before[name].definition}
    runs = []
    for model, views in users.items():
        if changed & set(views):
            digest = hashlib.sha256("|".join(states[v].definition for v in sorted(views) if v in states)
                                    .encode()).hexdigest()[:16]
            runs.append(dg.RunRequest(job_name=profile_job.name, partition_key=model, run_key=f"feast:{model}:{digest}",
                                      tags={"feast_views": ",".join(sorted(changed & set(views)))}))
    return runs


def _evaluations(states: dict[str, ViewState], before: dict[str, ViewState],
                 users: dict[str, list[str]]) -> list[dg.RunRequest]:
    """An evaluation of each window day a used view's newest materialisation covers."""
    used = {view for views in users.values() for view in views}
    days: dict[str, set[str]] = {}
    for name, state in states.items():
        previous = before.get(name)
        if name not in used or state.materialized_until is None or (
                previous is not None and previous.materialized_until == state.materialized_until):
            continue
        for day in _covered_days(state):
            days.setdefault(day, set()).add(name)
    return [dg.RunRequest(job_name=evaluate_window_job.name, partition_key=day,
                          run_key=f"feast:{day}:" + ",".join(f"{v}@{states[v].materialized_until}" for v in sorted(views)),
                          tags={"feast_views": ",".join(sorted(views))})
            for day, views in sorted(days.items())]


def _covered_days(state: ViewState) -> list[str]:
    """The window days of [materialized_from, materialized_until), the newest RECENT_DAYS that exist."""
    start = datetime.fromisoformat(state.materialized_from or state.materialized_until).date()
    end = datetime.fromisoformat(state.materialized_until)
    last = (end - timedelta(microseconds=1)).date()
    first, newest = daily_windows.get_first_partition_key() or "", daily_windows.get_last_partition_key() or ""
    wanted = [(start + timedelta(days=i)).isoformat() for i in range((last - start).days + 1)]
    return [day for day in wanted if first <= day <= newest][-RECENT_DAYS:]
