"""The problem log's rows: one per problem fingerprint (watchkeeper.problems owns their lifecycle).

Every method takes the caller's connection, so that observing a window's problems, resolving
the ones that are gone and queueing their notifications commit in the verdict's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from watchkeeper.store.records import StoredAlert, StoredProblem, decoded
from watchkeeper.store.schema import health, problems, window_alerts
from watchkeeper.store.sealed import stored_json

UNJUDGED = ("failed", "no_data")   # verdicts that say nothing about whether a problem is still there


class ProblemRows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def find(self, conn: sa.Connection, fingerprint: str, lock: bool = False) -> StoredProblem | None:
        """The problem with this fingerprint; with `lock`, its row stays locked until the transaction
        ends (PostgreSQL), so two writers cannot both count the same window."""
        query = sa.select(problems).where(problems.c.fingerprint == fingerprint)
        found = conn.execute(query.with_for_update() if lock else query).mappings().first()
        return _record(found) if found is not None else None

    def current(self, conn: sa.Connection, base: str, lock: bool = False) -> StoredProblem | None:
        """The newest episode of the problem whose first episode's fingerprint is `base` (episodes
        after it are `base#2`, `base#3`, ...); None when it never happened.

        A later episode exists only once the one before it was resolved, so the first episode,
        found by its key, is the current one unless it is resolved; only then are later ones looked for.
        """
        first = self.find(conn, base, lock)
        if first is None or first.state != "resolved":
            return first
        c = problems.c
        query = (sa.select(problems).where(c.fingerprint.startswith(f"{base}#", autoescape=True))
                 .order_by(c.episode.desc()).limit(1))
        found = conn.execute(query.with_for_update() if lock else query).mappings().first()
        return _record(found) if found is not None else first

    def count_incidents(self, conn: sa.Connection, model: str, kind: str) -> int:
        """Incidents of `kind` the model has had, over every version and episode."""
        c = problems.c
        query = sa.select(sa.func.count()).where(c.model == model, c.kind == kind, c.record == "incident")
        return conn.execute(query).scalar_one()

    def judged_windows_after(self, conn: sa.Connection, model: str, version: str, window: str) -> int:
        """Verdicts of the model version on windows after `window` that judged the model (not failed,
        not without data): how many windows in a row a problem last seen in `window` has been absent."""
        c = health.c
        query = sa.select(sa.func.count()).where(c.model == model, c.version == version, c.window > window,
                                                 c.status.not_in(UNJUDGED))
        return conn.execute(query).scalar_one()

    def put_window_alerts(self, conn: sa.Connection, model: str, window: str, alerts: list[dict],
                          replace_record: str | None) -> None:
        """Keep the alerts a window raised: those of `replace_record` (a verdict's incidents) are replaced
        as a whole, any other alert is added or replaced by its fingerprint."""
        c = window_alerts.c
        where = sa.and_(c.model == model, c.window == window)
        fingerprints = [a["fingerprint"] for a in alerts]
        conn.execute(window_alerts.delete().where(where, sa.or_(c.record == replace_record,
                                                                c.fingerprint.in_(fingerprints))))
        if alerts:
            conn.execute(window_alerts.insert(), [{"model": model, "window": window, "fingerprint": a["fingerprint"],
                                                   "record": a["record"], "payload_json": stored_json("payload_json", a)}
                                                  for a in alerts])

    def window_alerts(self, conn: sa.Connection, model: str | None = None,
                      window: str | None = None) -> list[StoredAlert]:
        """Alerts raised by windows (of one model, one window), by model, window and fingerprint."""
        c = window_alerts.c
        query = sa.select(window_alerts).order_by(c.model, c.window, c.fingerprint)
        if model is not None:
            query = query.where(c.model == model)
        if window is not None:
            query = query.where(c.window == window)
        return [StoredAlert(**decoded(row)) for row in conn.execute(query).mappings()]

    def insert(self, conn: sa.Connection, problem: StoredProblem) -> None:
        values = {name: getattr(problem, name) for name in problems.c.keys() if name != "payload_json"}
        conn.execute(problems.insert().values(**values, payload_json=stored_json("payload_json", problem.payload)))

    def update(self, conn: sa.Connection, fingerprint: str, payload: dict[str, Any] | None = None,
               **values: Any) -> None:
        """Set columns of one problem (`payload` is the newest alert, stored as JSON)."""
        if payload is not None:
            values["payload_json"] = stored_json("payload_json", payload)
        conn.execute(problems.update().where(problems.c.fingerprint == fingerprint).values(**values))

    def transition(self, conn: sa.Connection, states: Collection[str], fingerprint: str | None = None,
                   model: str | None = None, version: str | None = None, keep: Collection[str] = (),
                   **values: Any) -> int:
        """Set `values` on the problems now in one of `states` (of one fingerprint, or of a model
        version except the fingerprints in `keep`); returns how many changed."""
        c = problems.c
        query = problems.update().where(c.state.in_(list(states)))
        for column, value in ((c.fingerprint, fingerprint), (c.model, model), (c.version, version)):
            if value is not None:
                query = query.where(column == value)
        if keep:
            query = query.where(c.fingerprint.not_in(list(keep)))
        return conn.execute(query.values(**values)).rowcount

    def select(self, conn: sa.Connection, model: str | None = None, states: Collection[str] | None = None,
               records: Collection[str] | None = None) -> list[StoredProblem]:
        """Problems (of one model, in some states, of some ITIL records), oldest first."""
        query = sa.select(problems).order_by(problems.c.opened_at, problems.c.fingerprint)
        if model is not None:
            query = query.where(problems.c.model == model)
        if states is not None:
            query = query.where(problems.c.state.in_(list(states)))
        if records is not None:
            query = query.where(problems.c.record.in_(list(records)))
        return [_record(row) for row in conn.execute(query).mappings()]


def _record(row) -> StoredProblem:
    return StoredProblem(**decoded(row))
