"""The alert record: everything a person needs to triage a model problem, and nothing raw.

Channels and the outbox agree on this shape; a channel renders it (Block Kit, Adaptive
Card, Jira issue, ServiceNow incident) and must be idempotent by `fingerprint`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

SEVERITIES = ("info", "warning", "critical")
KINDS = ("data_drift", "concept_drift", "performance", "data_quality", "evaluation", "promotion_approval")
# The ITIL record a problem is: an incident (the model is unhealthy), a problem (one cause behind
# recurring incidents) or a change (a promotion that waits for approval).
INCIDENT, PROBLEM, CHANGE = "incident", "problem", "change"
RECORDS = (INCIDENT, PROBLEM, CHANGE)
# What a notification tells the channel: the problem was raised (or persists), or it is resolved.
RAISED, RESOLVED = "raised", "resolved"


@dataclass(frozen=True)
class AlertRecord:
    fingerprint: str            # stable per problem: model + version + kind (one ticket per problem, not per window)
    model: str
    version: str
    window: str                 # the window that (re)raised it, YYYY-MM-DD
    severity: str               # one of SEVERITIES
    kind: str                   # one of KINDS
    title: str
    summary: str
    features: list[dict] = field(default_factory=list)   # {name, test, statistic, p_value, effect_size, effect_metric}
    metrics: list[dict] = field(default_factory=list)    # {name, value, lower, upper, reference, delta}
    links: dict[str, str] = field(default_factory=dict)  # {"dagster": url, "mlflow": url}
    alarms: list[dict] = field(default_factory=list)     # {detector, index, timestamp, error_rate_before, error_rate_after}
    segments: list[dict] = field(default_factory=list)   # {segment, delta}: the worst segments first
    occurrence: int = 1         # how many windows this problem has persisted (escalation input)
    record: str = INCIDENT      # one of RECORDS: which ticket type a ticketing channel opens
    event: str = RAISED         # RAISED (create or update the ticket) or RESOLVED (comment and close it)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AlertRecord:
        return cls(**data)


@dataclass(frozen=True)
class Delivery:
    """What a channel did: its id for the message/ticket, and whether it created or updated it."""

    channel: str
    external_id: str
    action: str                 # "created" | "updated" | "posted" | "reopened" | "resolved" | "skipped"


@dataclass(frozen=True)
class TicketState:
    """What people did with a problem's ticket, read back from the ticketing system."""

    ticket: str                 # issue key, incident number
    acknowledged: bool          # someone took it: assigned, or in progress
    resolved: bool              # closed (by a person, or by Watchkeeper on recovery)
    approved: bool = False      # a change request was approved


class ChannelError(Exception):
    """A delivery attempt failed; `retry_after` (seconds) when the service said when to retry."""

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Channel(Protocol):
    """A destination. `send` must be idempotent by alert.fingerprint: sending the same
    alert again (after a timeout whose first attempt did land, say) updates or no-ops,
    it never creates a second message or ticket."""

    name: str

    def send(self, alert: AlertRecord) -> Delivery: ...


class TicketReader(Protocol):
    """A ticketing channel (Jira, ServiceNow) that can tell what became of a problem's ticket;
    None when it holds no ticket for the fingerprint. Raises ChannelError like `send`."""

    def read(self, fingerprint: str, record: str) -> TicketState | None: ...
