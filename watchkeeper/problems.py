"""The problem log: one record per problem, its lifecycle, and which notifications it raises.

A problem is one kind of trouble with one model version (data drift, performance, concept
drift, data quality, a failed evaluation, a promotion waiting for approval), named by
`fingerprint` — the only place a fingerprint is built. Its states:

    open ──acknowledge──> acknowledged
      │                        │
      └──── absent from the newest window ────> resolved ──seen again──> reopened

Each window a problem is seen in counts once (`occurrence`, reruns and backfills do not add),
which drives escalation. `ProblemLog.record` observes a model-window's alerts, resolves what
is gone, and queues what the alert policy says into the outbox — in the caller's transaction,
so the verdict, its problems and its notifications commit together or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import sqlalchemy as sa

from watchkeeper.alerting.policy import Plan, Policy
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.security.audit import ALERT_QUEUED
from watchkeeper.store import MonitoringStore, StoredProblem

OPEN, ACKNOWLEDGED, RESOLVED, REOPENED = "open", "acknowledged", "resolved", "reopened"
ACTIVE = (OPEN, ACKNOWLEDGED, REOPENED)


def fingerprint(model: str, version: str, kind: str) -> str:
    """Stable across windows, so a persisting problem is one ticket that gets updated; a new
    model version is a new problem.

    >>> fingerprint("churn", "3", "data_drift")
    'churn:3:data_drift'
    """
    return f"{model}:{version}:{kind}"


@dataclass(frozen=True)
class Problem:
    fingerprint: str
    model: str
    version: str
    kind: str
    state: str
    first_window: str
    last_window: str
    occurrence: int            # windows in which the problem was seen
    opened_at: datetime
    alert: AlertRecord         # the newest alert of the problem

    @property
    def acknowledged(self) -> bool:
        return self.state == ACKNOWLEDGED

    def to_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "kind": self.kind, "state": self.state,
                "opened": self.first_window, "last_window": self.last_window, "occurrence": self.occurrence}


class ProblemLog:
    """The lifecycle of every problem, on the monitoring store (SQLite or PostgreSQL)."""

    def __init__(self, store: MonitoringStore, clock: Callable[[], float] = time.time) -> None:
        self.store, self.rows = store, store.problem_rows
        self.outbox = store.outbox(clock)
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def record(self, model: str, version: str, window: str, alerts: list[AlertRecord], policy: Policy,
               latest: bool = True, tags: Mapping[str, str] | None = None,
               tx: sa.Connection | None = None) -> dict[str, Plan]:
        """Observe one window's alerts of a model version and queue what `policy` plans for each.

        With `latest` (the window is the model's newest), problems of the version absent from
        `alerts` are resolved; a refreshed older window opens or counts problems but resolves
        nothing. Returns each fingerprint's plan, to show what was sent and what was held.
        """
        plans = {}
        with self.store.writing(tx) as conn:
            if latest:
                self._resolve_absent(conn, model, version, {a.fingerprint for a in alerts})
            for alert in alerts:
                problem = self._observe(conn, alert)
                alert = replace(alert, occurrence=problem.occurrence)
                plan = policy.plan(alert, self.now(), problem.opened_at, problem.acknowledged,
                                   self.outbox.last_sent(alert.fingerprint, tx=conn), tags)
                for dispatch in plan.dispatches:
                    self.outbox.enqueue(alert, [dispatch.channel], dispatch.not_before, tx=conn)
                plans[alert.fingerprint] = plan
        return plans

    def acknowledge(self, fingerprint: str) -> bool:
        """Someone took the problem (e.g. its ticket was assigned): escalation for nobody
        acknowledging it stops. False when there is no such active problem."""
        with self.store.transaction() as conn:
            done = self.rows.transition(conn, (OPEN, REOPENED), fingerprint=fingerprint, state=ACKNOWLEDGED,
                                        acknowledged_at=self.now())
        return done == 1

    def sweep(self, policy: Policy, tags_of: Callable[[str], Mapping[str, str]] = lambda model: {}) -> int:
        """Queue escalations that are due by time alone (tickets unacknowledged for too long).

        Run it periodically (with the sender): window-driven escalation happens in `record`,
        but a ticket ignored for four hours must not wait for tomorrow's window.
        """
        queued = 0
        with self.store.transaction() as conn:
            for problem in map(_problem, self.rows.select(conn, states=(OPEN, REOPENED))):
                plan = policy.plan(problem.alert, self.now(), problem.opened_at, False,
                                   self.outbox.last_sent(problem.fingerprint, tx=conn), tags_of(problem.model),
                                   routes=False)
                new = sum(self.outbox.enqueue(problem.alert, [d.channel], d.not_before, tx=conn)
                          for d in plan.dispatches)
                if new:
                    self.store.audit(ALERT_QUEUED, problem.fingerprint, partition=problem.last_window, tx=conn,
                                     details={"channels": [d.channel for d in plan.dispatches], "escalation": True})
                queued += new
        return queued

    def problems(self, model: str | None = None) -> list[Problem]:
        """Every problem (of one model), oldest first."""
        with self.store.engine.connect() as conn:
            return [_problem(row) for row in self.rows.select(conn, model)]

    def _observe(self, conn: sa.Connection, alert: AlertRecord) -> Problem:
        """Count the window in the problem's history: a newer window adds one and reopens a
        resolved problem; a rerun or an older window changes neither."""
        found = self.rows.find(conn, alert.fingerprint, lock=True)
        if found is None:
            self.rows.insert(conn, StoredProblem(
                fingerprint=alert.fingerprint, model=alert.model, version=alert.version, kind=alert.kind, state=OPEN,
                first_window=alert.window, last_window=alert.window, occurrence=1, opened_at=self.now(),
                acknowledged_at=None, resolved_at=None, payload=alert.to_dict()))
        else:
            values: dict = {}
            if alert.window > found.last_window:
                values |= {"occurrence": found.occurrence + 1, "last_window": alert.window}
                if found.state == RESOLVED:
                    values |= {"state": REOPENED, "resolved_at": None}
            self.rows.update(conn, alert.fingerprint, payload=alert.to_dict(), **values)
        return _problem(self.rows.find(conn, alert.fingerprint))

    def _resolve_absent(self, conn: sa.Connection, model: str, version: str, present: set[str]) -> None:
        self.rows.transition(conn, ACTIVE, model=model, version=version, keep=present, state=RESOLVED,
                             resolved_at=self.now())


def _problem(row: StoredProblem) -> Problem:
    return Problem(row.fingerprint, row.model, row.version, row.kind, row.state, row.first_window, row.last_window,
                   row.occurrence, row.opened_at,
                   replace(AlertRecord.from_dict(row.payload), occurrence=row.occurrence))
