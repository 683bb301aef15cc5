"""What people did with the tickets, read back from Jira and ServiceNow into the problem log.

Polled (the ticket sync sensor runs it every minute or so) rather than pushed, so no inbound
endpoint has to be exposed and a ticketing system that is down only delays the next poll.
For every active problem, each channel that delivered it and can read tickets back
(`TicketReader.read`) is asked for the ticket's state:

- assigned, or in progress: the problem is acknowledged, so escalation for nobody having
  acknowledged it stops (watchkeeper.problems);
- a change request approved: the `approve` callback carries the promotion out (and resolves
  the change, which comments on and closes the ticket through the outbox);
- a problem record closed: the people who own the recurring cause say it is removed, so the
  problem record is resolved (incidents are resolved by healthy windows, not by a closed ticket:
  one closed while the model is still unhealthy is reopened by the next alert).

A channel that fails is reported for that problem and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from watchkeeper.alerting.record import CHANGE, PROBLEM, Channel, ChannelError, TicketState
from watchkeeper.messages import one_line
from watchkeeper.problems import ACTIVE, OPEN, REOPENED, Problem, ProblemLog

Approve = Callable[[Problem, TicketState], str]


@dataclass
class SyncResult:
    acknowledged: list[str] = field(default_factory=list)     # fingerprints
    approved: dict[str, str] = field(default_factory=dict)    # fingerprint -> what approving did
    resolved: list[str] = field(default_factory=list)         # problem records closed in their ticket
    errors: dict[str, str] = field(default_factory=dict)      # "fingerprint @ channel" -> why it was not read

    def summary(self) -> str:
        return (f"acknowledged {len(self.acknowledged)}, approved {len(self.approved)}, "
                f"resolved {len(self.resolved)}, unread {len(self.errors)}")


def sync_tickets(log: ProblemLog, channels: Mapping[str, Channel], approve: Approve | None = None) -> SyncResult:
    """Read the tickets of every active problem back and act on what people did."""
    result = SyncResult()
    for problem in log.problems(states=ACTIVE):
        for name in log.tickets(problem.fingerprint):
            read = getattr(channels.get(name), "read", None)
            if read is None:                       # chat, webhooks, the local outbox: nothing to read
                continue
            try:
                ticket = read(problem.fingerprint, problem.record)
                if ticket is not None and _act(log, problem, ticket, approve, result):
                    break
            except (ChannelError, ValueError) as error:    # ApprovalError is a ValueError
                result.errors[f"{problem.fingerprint} @ {name}"] = one_line(error, 300)
    return result


def _act(log: ProblemLog, problem: Problem, ticket: TicketState, approve: Approve | None,
         result: SyncResult) -> bool:
    """Apply one ticket's state; True when it decided the problem (no other ticket need be read)."""
    if problem.record == CHANGE and ticket.approved and approve is not None:
        result.approved[problem.fingerprint] = approve(problem, ticket)
        return True
    if problem.record == PROBLEM and ticket.resolved:
        log.resolve(problem.fingerprint, f"Closed in {ticket.ticket}: the recurring cause was handled there.",
                    by=f"ticket {ticket.ticket}")
        result.resolved.append(problem.fingerprint)
        return True
    if (ticket.acknowledged and problem.state in (OPEN, REOPENED)
            and log.acknowledge(problem.fingerprint, by=f"ticket {ticket.ticket}")):
        result.acknowledged.append(problem.fingerprint)
        return True
    return False
