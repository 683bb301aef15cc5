"""Reads what people did with the tickets (Jira, ServiceNow) back into the problem log.

An assigned or in-progress ticket acknowledges its problem (escalation stops); an approved
change request promotes its challenger, after which the registry sensor profiles the new
champion. Nothing here raises on what it cannot use: a policy file that cannot be read, or a
ticketing system that does not answer, is reported in the tick and tried again next tick.
"""

import dagster as dg

from resources import AlertingResource, MlflowRegistryResource, MonitoringStoreResource
from watchkeeper.alerting.policy import PolicyError
from watchkeeper.alerting.record import TicketState
from watchkeeper.messages import one_line
from watchkeeper.problems import Problem, ProblemLog
from watchkeeper.retraining.approval import approve_promotion
from watchkeeper.ticket_sync import sync_tickets


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Polls the Jira issues and ServiceNow records of active problems: an assigned or "
                       "in-progress ticket acknowledges its problem (stopping escalation); an approved change "
                       "request promotes its challenger to champion. Launches no runs.")
def ticket_sync_sensor(context: dg.SensorEvaluationContext, monitoring_store: MonitoringStoreResource,
                       alerting: AlertingResource, mlflow_registry: MlflowRegistryResource) -> dg.SkipReason:
    try:
        policy = alerting.policy()
    except (PolicyError, ImportError) as e:
        context.log.error(f"no ticket read: the alerting policy cannot be used: {one_line(e)}")
        return dg.SkipReason(f"no ticket read: the alerting policy cannot be used: {one_line(e)}")
    log = ProblemLog(monitoring_store.store())

    def approve(problem: Problem, ticket: TicketState) -> str:
        return approve_promotion(mlflow_registry.registry(), log, problem.model, problem.version,
                                 by=f"ticket {ticket.ticket}")

    result = sync_tickets(log, policy.build_channels(), approve)
    for note in result.approved.values():
        context.log.info(note)
    for where, error in result.errors.items():
        context.log.warning(f"ticket not read: {where}: {error}")
    return dg.SkipReason(result.summary())
