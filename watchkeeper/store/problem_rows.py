"""The problem log's rows: one per problem fingerprint (watchkeeper.problems owns their lifecycle).

Every method takes the caller's connection, so that observing a window's problems, resolving
the ones that are gone and queueing their notifications commit in the verdict's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from watchkeeper.store.records import StoredProblem, decoded
from watchkeeper.store.schema import problems
from watchkeeper.store.sealed import stored_json


class ProblemRows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def find(self, conn: sa.Connection, fingerprint: str, lock: bool = False) -> StoredProblem | None:
        """The problem with this fingerprint; with `lock`, its row stays locked until the transaction
        ends (PostgreSQL), so two writers cannot both count the same window."""
        query = sa.select(problems).where(problems.c.fingerprint == fingerprint)
        found = conn.execute(query.with_for_update() if lock else query).mappings().first()
        return _record(found) if found is not None else None

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

    def select(self, conn: sa.Connection, model: str | None = None,
               states: Collection[str] | None = None) -> list[StoredProblem]:
        """Problems (of one model, in some states), oldest first."""
        query = sa.select(problems).order_by(problems.c.opened_at, problems.c.fingerprint)
        if model is not None:
            query = query.where(problems.c.model == model)
        if states is not None:
            query = query.where(problems.c.state.in_(list(states)))
        return [_record(row) for row in conn.execute(query).mappings()]


def _record(row) -> StoredProblem:
    return StoredProblem(**decoded(row))
