"""Delivers the alert outbox: retries with backoff, escalates tickets nobody acknowledged.

Nothing here raises on what it cannot use. A policy file that cannot be read sends nothing
this tick and says why (the rows wait in the outbox, none is lost); a problem the escalation
sweep cannot read stops the sweep, not the delivery; a row that fails, or a channel whose
secret or address is wrong, is retried or dead with its error in the outbox, while every
other channel delivers.
"""

import dagster as dg

from resources import AlertingResource, MonitoringStoreResource
from watchkeeper.alerting.outbox import Sender
from watchkeeper.alerting.policy import PolicyError
from watchkeeper.messages import one_line
from watchkeeper.problems import ProblemLog


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Sends pending outbox rows through their channels (at least once, idempotent by "
                       "fingerprint) and queues time-based escalations. Launches no runs.")
def alert_delivery_sensor(context: dg.SensorEvaluationContext, monitoring_store: MonitoringStoreResource,
                          alerting: AlertingResource) -> dg.SkipReason:
    try:
        policy = alerting.policy()
    except (PolicyError, ImportError) as e:      # a bad file, or a channel plugin that is not installed
        context.log.error(f"nothing sent: the alerting policy cannot be used: {one_line(e)}")
        return dg.SkipReason(f"nothing sent: the alerting policy cannot be used: {one_line(e)}")
    problems, notes = ProblemLog(monitoring_store.store()), []
    try:
        notes.append(f"escalations queued {problems.sweep(policy)}")
    except (KeyError, TypeError, ValueError) as e:     # an unreadable problem row
        context.log.warning(f"no escalation sweep this tick: {type(e).__name__}: {one_line(e)}")
        notes.append("escalation sweep skipped (see the log)")
    stats = Sender(problems.outbox, policy.build_channels()).run_once(limit=200, budget=40)
    if stats.dead:
        context.log.warning(f"{stats.dead} deliveries are dead; their errors are in the outbox (last_error)")
    return dg.SkipReason(f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}, "
                         + ", ".join(notes))
