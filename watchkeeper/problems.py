"""The problem log: one record per problem, its lifecycle, and which notifications it raises.

A problem is one kind of trouble with one model version (data drift, performance, concept
drift, data quality, a failed evaluation, a promotion waiting for approval), named by
`fingerprint` — the only place a fingerprint is built. It is an ITIL record of one kind: an
*incident* (the model is unhealthy), a *problem record* (one model and kind keeps having
incidents: the cause recurs), or a *change* (a promotion waiting for approval). Its states:

    open ──acknowledge (ticket assigned / in progress)──> acknowledged
      │                                                        │
      └──── N newest windows without it (Lifecycle) ───────────┴──> resolved
                                                                       │
        seen again within `reopen_within` of its last sighting <───────┘──> reopened
        seen again later: a new incident (episode 2, fingerprint `model:version:kind#2`)

Each window a problem is seen in counts once (`occurrence`; reruns and backfills do not add),
which drives escalation; an acknowledged problem is not escalated for being ignored. A resolved
problem tells every channel that heard of it (a ticket gets a comment and is closed). The
alerts of each window are kept as raised (`window_alerts`), so a re-materialised window still
shows what it raised. `ProblemLog.record` does all of it in the caller's transaction, so the
verdict, its problems and its notifications commit together or not at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone

import sqlalchemy as sa

from watchkeeper.alerting.policy import Lifecycle, Plan, Policy
from watchkeeper.alerting.record import CHANGE, INCIDENT, PROBLEM, RESOLVED as RESOLVED_EVENT, AlertRecord
from watchkeeper.security.audit import ALERT_QUEUED, PROBLEM_ACKNOWLEDGED, PROBLEM_RESOLVED
from watchkeeper.store import MonitoringStore, StoredAlert, StoredProblem

OPEN, ACKNOWLEDGED, RESOLVED, REOPENED = "open", "acknowledged", "resolved", "reopened"
ACTIVE = (OPEN, ACKNOWLEDGED, REOPENED)
ANY_VERSION = "*"            # the version of a problem record: the cause spans versions
PROMOTION = "promotion_approval"
EPISODE = re.compile(r"#\d+$")       # the suffix of a problem's second and later episodes


def fingerprint(model: str, version: str, kind: str, episode: int = 1) -> str:
    """Stable across windows, so a persisting problem is one ticket that gets updated; a new
    model version is a new problem, and so is a recurrence after the reopen window (episode 2).

    >>> fingerprint("churn", "3", "data_drift"), fingerprint("churn", "3", "data_drift", 2)
    ('churn:3:data_drift', 'churn:3:data_drift#2')
    """
    return episode_of(f"{model}:{version}:{kind}", episode)


def episode_of(base: str, episode: int) -> str:
    """The fingerprint of the `episode`-th incident of the problem first raised as `base`."""
    return base if episode == 1 else f"{base}#{episode}"


def base_fingerprint(problem_fingerprint: str) -> str:
    """The fingerprint of a problem's first episode, which the alerts of every episode are raised with.

    >>> base_fingerprint("churn:3:data_drift#2")
    'churn:3:data_drift'
    """
    return EPISODE.sub("", problem_fingerprint)


def record_of(kind: str) -> str:
    """The ITIL record a problem of `kind` is raised as: a promotion is a change, the rest incidents."""
    return CHANGE if kind == PROMOTION else INCIDENT


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
    episode: int = 1
    record: str = INCIDENT
    healthy_windows: int = 0   # newest windows in a row without it

    @property
    def acknowledged(self) -> bool:
        return self.state == ACKNOWLEDGED

    def to_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "kind": self.kind, "record": self.record, "state": self.state,
                "opened": self.first_window, "last_window": self.last_window, "occurrence": self.occurrence,
                "episode": self.episode, "healthy_windows": self.healthy_windows}


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
               tx: sa.Connection | None = None, verdict: bool = True) -> dict[str, Plan]:
        """Observe one window's alerts of a model version and queue what `policy` plans for each.

        With `verdict` (the default), `alerts` are everything the window's verdict raised: they
        replace the window's kept alerts, and the verdict must already be stored (in `tx`), since
        recovery counts the stored verdicts. With `latest` (the window is the model's newest),
        problems of the version absent from `alerts` for `policy.lifecycle.resolve_after_windows`
        windows are resolved; a refreshed older window opens or counts problems but resolves
        nothing. Returns each fingerprint's plan, to show what was sent and what was held.
        """
        plans, kept = {}, []
        with self.store.writing(tx) as conn:
            if latest and verdict:
                self._recover(conn, model, version, window, {a.fingerprint for a in alerts}, policy.lifecycle)
            for raised in alerts:
                problem, news = self._observe(conn, replace(raised, record=record_of(raised.kind)), policy.lifecycle)
                plans[problem.fingerprint] = self._queue(conn, problem, policy, tags, news)
                kept.append(problem.alert)
                if news == OPEN and problem.record == INCIDENT:
                    self._recurring_cause(conn, problem, policy, tags, plans)
            self.rows.put_window_alerts(conn, model, window, [a.to_dict() for a in kept],
                                        replace_record=INCIDENT if verdict else None)
        return plans

    def acknowledge(self, fingerprint: str, by: str | None = None) -> bool:
        """Someone took the problem (e.g. its ticket was assigned): escalation for nobody
        acknowledging it stops, and the audit trail says who (`by`, e.g. "ticket OPS-7"). False
        when there is no such open or reopened problem."""
        with self.store.transaction() as conn:
            done = self.rows.transition(conn, (OPEN, REOPENED), fingerprint=fingerprint, state=ACKNOWLEDGED,
                                        acknowledged_at=self.now())
            if done == 1:
                self.store.audit(PROBLEM_ACKNOWLEDGED, fingerprint, actor=by, tx=conn)
        return done == 1

    def resolve(self, fingerprint: str, note: str, window: str | None = None, by: str | None = None) -> bool:
        """Resolve an active problem by a decision outside the windows (a change approved and
        carried out, a problem record closed in its ticket; `by` is who, for the audit trail),
        telling every channel that heard of it `note`. False when it is not active."""
        with self.store.transaction() as conn:
            found = self.rows.find(conn, fingerprint, lock=True)
            if found is None or found.state not in ACTIVE:
                return False
            problem = _problem(found)
            self._resolve(conn, problem, window or problem.last_window, note, problem.healthy_windows, by)
        return True

    def sweep(self, policy: Policy, tags_of: Callable[[str], Mapping[str, str]] = lambda model: {}) -> int:
        """Queue escalations that are due by time alone (incidents unacknowledged for too long).

        Run it periodically (with the sender): window-driven escalation happens in `record`,
        but a ticket ignored for four hours must not wait for tomorrow's window.
        """
        queued = 0
        with self.store.transaction() as conn:
            for problem in map(_problem, self.rows.select(conn, states=(OPEN, REOPENED), records=(INCIDENT,))):
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

    def problems(self, model: str | None = None, states: tuple[str, ...] | None = None) -> list[Problem]:
        """Every problem (of one model, in some states), oldest first."""
        with self.store.engine.connect() as conn:
            return [_problem(row) for row in self.rows.select(conn, model, states)]

    def window_alerts(self, model: str | None = None, window: str | None = None) -> list[StoredAlert]:
        return self.store.window_alerts(model, window)

    def tickets(self, fingerprint: str) -> dict[str, str]:
        """Channel -> ticket (or message) id of every delivery of the problem."""
        return self.outbox.tickets(fingerprint)

    # ------------------------------------------------------------------ inside record's transaction

    def _queue(self, conn: sa.Connection, problem: Problem, policy: Policy, tags: Mapping[str, str] | None,
               news: str | None = None) -> Plan:
        """Queue the policy's plan for the problem; one that was just reopened is news to every
        channel, whatever their cooldown."""
        last_sent = {} if news == REOPENED else self.outbox.last_sent(problem.fingerprint, tx=conn)
        plan = policy.plan(problem.alert, self.now(), problem.opened_at, problem.acknowledged, last_sent, tags)
        for dispatch in plan.dispatches:
            self.outbox.enqueue(problem.alert, [dispatch.channel], dispatch.not_before, tx=conn)
        return plan

    def _observe(self, conn: sa.Connection, alert: AlertRecord, lifecycle: Lifecycle) -> tuple[Problem, str | None]:
        """Count the window in the problem's history: a newer window adds one and reopens a problem
        resolved within `reopen_within`, or starts the next episode when it was resolved longer ago;
        a rerun or an older window changes neither. Returns the problem and what is news about it:
        OPEN (a new incident), REOPENED, or None."""
        found = self.rows.current(conn, alert.fingerprint, lock=True)
        newer = found is not None and alert.window > found.last_window
        if found is None or (found.state == RESOLVED and newer
                             and _days(found.last_window, alert.window) > lifecycle.reopen_within.days):
            episode = 1 if found is None else found.episode + 1
            alert = replace(alert, fingerprint=episode_of(alert.fingerprint, episode), occurrence=1)
            self.rows.insert(conn, StoredProblem(
                fingerprint=alert.fingerprint, model=alert.model, version=alert.version, kind=alert.kind, state=OPEN,
                first_window=alert.window, last_window=alert.window, occurrence=1, opened_at=self.now(),
                acknowledged_at=None, resolved_at=None, payload=alert.to_dict(), episode=episode, record=alert.record))
            return _problem(self.rows.find(conn, alert.fingerprint)), OPEN
        values: dict = {}
        occurrence, news = found.occurrence, None
        if newer:
            occurrence += 1
            values |= {"occurrence": occurrence, "last_window": alert.window, "healthy_windows": 0}
            if found.state == RESOLVED:
                values |= {"state": REOPENED, "resolved_at": None, "acknowledged_at": None}
                news = REOPENED
        alert = replace(alert, fingerprint=found.fingerprint, occurrence=occurrence)
        self.rows.update(conn, found.fingerprint, payload=alert.to_dict(), **values)
        return _problem(self.rows.find(conn, found.fingerprint)), news

    def _recover(self, conn: sa.Connection, model: str, version: str, window: str, present: set[str],
                 lifecycle: Lifecycle) -> None:
        """Count the windows each active incident of the version has been absent since its last
        sighting; those absent for `resolve_after_windows` judged windows are resolved."""
        for row in self.rows.select(conn, model, states=ACTIVE, records=(INCIDENT,)):
            if row.version != version or base_fingerprint(row.fingerprint) in present or row.last_window >= window:
                continue
            healthy = self.rows.judged_windows_after(conn, model, version, row.last_window)
            if healthy < lifecycle.resolve_after_windows:
                self.rows.update(conn, row.fingerprint, healthy_windows=healthy)
                continue
            note = (f"Resolved: {model} v{version} has shown no {row.kind.replace('_', ' ')} in the {healthy} "
                    f"windows since {row.last_window} (through {window}).")
            self._resolve(conn, _problem(row), window, note, healthy)

    def _resolve(self, conn: sa.Connection, problem: Problem, window: str, note: str, healthy: int,
                 by: str | None = None) -> None:
        """Mark the problem resolved (audited) and tell each channel that got it (a ticket: comment, close)."""
        self.rows.update(conn, problem.fingerprint, state=RESOLVED, resolved_at=self.now(), healthy_windows=healthy)
        self.store.audit(PROBLEM_RESOLVED, problem.fingerprint, actor=by, partition=window, tx=conn,
                         details={"record": problem.record, "healthy_windows": healthy, "note": note})
        notice = replace(problem.alert, event=RESOLVED_EVENT, window=window, summary=note,
                         title=f"Resolved: {problem.alert.title}")
        self.outbox.enqueue(notice, list(self.outbox.last_sent(problem.fingerprint, tx=conn)), tx=conn)

    def _recurring_cause(self, conn: sa.Connection, incident: Problem, policy: Policy,
                         tags: Mapping[str, str] | None, plans: dict[str, Plan]) -> None:
        """Raise one problem record when the model's incidents of this kind reach the lifecycle's
        `problem_after_incidents` (over versions and episodes); later incidents only add to it."""
        model, kind = incident.model, incident.kind
        count = self.rows.count_incidents(conn, model, kind)
        cause_fingerprint = fingerprint(model, ANY_VERSION, kind)
        if count < policy.lifecycle.problem_after_incidents or self.rows.current(conn, cause_fingerprint):
            return
        incidents = [r for r in self.rows.select(conn, model, records=(INCIDENT,)) if r.kind == kind]
        listed = ", ".join(f"{r.fingerprint} (from {r.first_window})" for r in incidents)
        label = kind.replace("_", " ")
        cause = replace(incident.alert, fingerprint=cause_fingerprint, version=ANY_VERSION,
                        record=PROBLEM, occurrence=1, title=f"{model}: recurring {label} ({count} incidents)",
                        summary=f"{count} incidents of {label} for model {model}: {listed}. The same cause keeps "
                                "coming back; find and remove it rather than resolving each incident.")
        problem, _ = self._observe(conn, cause, policy.lifecycle)
        plans[problem.fingerprint] = self._queue(conn, problem, policy, tags)


def _days(earlier: str, later: str) -> int:
    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def _problem(row: StoredProblem) -> Problem:
    return Problem(row.fingerprint, row.model, row.version, row.kind, row.state, row.first_window, row.last_window,
                   row.occurrence, row.opened_at,
                   replace(AlertRecord.from_dict(row.payload), occurrence=row.occurrence),
                   row.episode, row.record, row.healthy_windows)
