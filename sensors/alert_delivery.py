"""Delivers the alert outbox: retries with backoff, escalates tickets nobody acknowledged."""

import dagster as dg

from resources import AlertingResource, MonitoringStoreResource
from watchkeeper.alerting.outbox import Sender
from watchkeeper.problems import ProblemLog


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Sends pending outbox rows through their channels (at least once, idempotent by "
                       "fingerprint) and queues time-based escalations. Launches no runs.")
def alert_delivery_sensor(context: dg.SensorEvaluationContext, monitoring_store: MonitoringStoreResource,
                          alerting: AlertingResource) -> dg.SkipReason:
    policy, problems = alerting.policy(), ProblemLog(monitoring_store.store())
    escalated = problems.sweep(policy)
    stats = Sender(problems.outbox, policy.build_channels()).run_once(limit=200, budget=40)
    return dg.SkipReason(f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}, "
                         f"escalations queued {escalated}")
