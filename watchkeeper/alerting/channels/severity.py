"""Alert severity -> the ITIL incident fields (impact, urgency, priority) that Jira and ServiceNow use.

ITIL derives priority from two judgements: *impact* (how much of the business is affected)
and *urgency* (how fast it gets worse). ServiceNow computes priority from the pair with the
matrix below (its default "Priority Data Lookup"), so the channel sends impact and urgency
and lets the platform derive priority; Jira has a single priority field, so it gets the
derived priority by name.

| severity | impact     | urgency    | priority     | Jira priority |
| -------- | ---------- | ---------- | ------------ | ------------- |
| critical | 1 High     | 1 High     | 1 Critical   | Highest       |
| warning  | 2 Medium   | 2 Medium   | 3 Moderate   | Medium        |
| info     | 3 Low      | 3 Low      | 5 Planning   | Lowest        |

Why these: a critical alert is a measured loss of model performance, which already hurts
every consumer of the model (high impact) and keeps hurting each window (high urgency);
a warning (drift without a measured loss) needs a look within the working day; information
is backlog material.

>>> itil_fields("warning")
Itil(impact=2, urgency=2, priority=3)
>>> priority_label(1)
'Critical'
"""

from __future__ import annotations

from dataclasses import dataclass

from watchkeeper.alerting.record import SEVERITIES

LEVEL_LABELS = {1: "High", 2: "Medium", 3: "Low"}
PRIORITY_LABELS = {1: "Critical", 2: "High", 3: "Moderate", 4: "Low", 5: "Planning"}
# ServiceNow's default priority lookup: PRIORITY_MATRIX[impact][urgency].
PRIORITY_MATRIX = {1: {1: 1, 2: 2, 3: 3}, 2: {1: 2, 2: 3, 3: 4}, 3: {1: 3, 2: 4, 3: 5}}
# (impact, urgency) per severity; see the table in the module docstring.
SEVERITY_LEVELS = {"critical": (1, 1), "warning": (2, 2), "info": (3, 3)}
# Jira's default priority scheme, by ITIL priority.
JIRA_PRIORITY_NAMES = {1: "Highest", 2: "High", 3: "Medium", 4: "Low", 5: "Lowest"}


@dataclass(frozen=True)
class Itil:
    impact: int     # 1 High .. 3 Low
    urgency: int    # 1 High .. 3 Low
    priority: int   # 1 Critical .. 5 Planning


def itil_fields(severity: str) -> Itil:
    """The ITIL impact, urgency and derived priority for an alert severity."""
    if severity not in SEVERITY_LEVELS:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    impact, urgency = SEVERITY_LEVELS[severity]
    return Itil(impact=impact, urgency=urgency, priority=PRIORITY_MATRIX[impact][urgency])


def priority_label(priority: int) -> str:
    return PRIORITY_LABELS[priority]
