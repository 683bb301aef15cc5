"""The outbox's rows: every notification is a row before it is a message (watchkeeper.alerting.outbox
delivers them).

Rows are unique per fingerprint, channel and occurrence, so enqueueing the same thing twice is a
no-op; they are written in the monitoring store's database, in the verdict's transaction when the
problem log passes one. A sender claims due rows with a lease, and finishes each (delivered,
retried or dead) only while it still holds it.

Every time stored or compared here (lease expiry, due times, channel pauses) is the database's
clock, computed in SQL by the database (`now()` on PostgreSQL; on SQLite, the clock of the host
whose processes share the file), never a sender's: a sender whose clock runs ahead cannot see
another's lease as expired. When a row was queued (`created_at`) is this process's clock, like
the problem log's times.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from watchkeeper.alerting.record import RAISED, AlertRecord
from watchkeeper.security.audit import AuditEntry
from watchkeeper.store.audit_rows import AuditRows
from watchkeeper.store.migrate import ensure_current
from watchkeeper.store.records import aware as _aware
from watchkeeper.store.schema import channel_pauses, outbox
from watchkeeper.store.sealed import loaded_json, stored_json

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Outbox:
    """Persisted notifications, on the monitoring store's database (SQLite or PostgreSQL).

    What to notify is decided by the problem log (watchkeeper.problems), which enqueues here in
    the same transaction as the verdict; senders claim and deliver the rows.
    """

    def __init__(self, engine: sa.Engine | str, clock: Callable[[], float] = time.time,
                 database_clock: Callable[[], float] | None = None) -> None:
        """clock: this process's clock (seconds since the epoch), for when a row was queued.
        database_clock: stands in for the database's clock, which times leases, due times and
        pauses; tests use it (with `clock`) to let time pass. Left out, the database's own."""
        self.engine = sa.create_engine(engine) if isinstance(engine, str) else engine
        if self.engine.dialect.name not in INSERT:
            raise ValueError(f"outbox: unsupported database {self.engine.dialect.name!r} (sqlite or postgresql)")
        self.clock = clock
        self.database_clock = database_clock
        ensure_current(self.engine)

    def now(self) -> datetime:
        """This process's current time, in UTC."""
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def database_now(self) -> datetime:
        """The database's current time, in UTC: what leases, due times and pauses are timed by."""
        with self.engine.connect() as conn:
            return _aware(conn.execute(sa.select(self._at(0.0))).scalar_one())

    def _at(self, seconds: float) -> sa.ColumnElement:
        """The database's time `seconds` from now, as SQL that the database evaluates in the
        statement itself (PostgreSQL: the transaction's start; SQLite: the host's clock)."""
        if self.database_clock is not None:
            at = datetime.fromtimestamp(self.database_clock() + seconds, timezone.utc)
            return sa.literal(at, sa.DateTime(timezone=True))
        if self.engine.dialect.name == "postgresql":
            return sa.func.now() + timedelta(seconds=seconds)
        return sa.func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{seconds:+.3f} seconds", type_=sa.DateTime(timezone=True))

    def _greatest(self, *values: sa.ColumnElement) -> sa.ColumnElement:
        """The latest of `values` (SQLite's scalar max() of two or more arguments)."""
        return (sa.func.greatest if self.engine.dialect.name == "postgresql" else sa.func.max)(*values)

    def enqueue(self, alert: AlertRecord, channels: Iterable[str], not_before: datetime | None = None,
                tx: sa.Connection | None = None) -> int:
        """Queue `alert` for each channel, in `tx` when given; returns how many rows are new (an
        existing fingerprint/channel/occurrence is left as it is, so enqueueing is idempotent)."""
        if tx is not None:
            return sum(self._insert(tx, alert, channel, not_before) for channel in channels)
        with self.engine.begin() as conn:
            return sum(self._insert(conn, alert, channel, not_before) for channel in channels)

    def last_sent(self, fingerprint: str, tx: sa.Connection | None = None) -> dict[str, datetime]:
        """When each channel was last given this fingerprint raised (queued counts: it will arrive)."""
        query = (sa.select(outbox.c.channel, sa.func.max(outbox.c.created_at))
                 .where(outbox.c.fingerprint == fingerprint, outbox.c.event == RAISED).group_by(outbox.c.channel))
        if tx is not None:
            return {channel: _aware(at) for channel, at in tx.execute(query)}
        with self.engine.connect() as conn:
            return {channel: _aware(at) for channel, at in conn.execute(query)}

    def rows(self, status: str | None = None) -> list[dict]:
        """Outbox rows, oldest first (what the UI shows), payload decoded (None when it cannot be),
        times in UTC."""
        query = sa.select(outbox).order_by(outbox.c.id)
        if status is not None:
            query = query.where(outbox.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**{k: _aware(v) if isinstance(v, datetime) else v for k, v in row.items()},
                 "payload": _decoded(row["payload_json"])} for row in rows]

    def tickets(self, fingerprint: str) -> dict[str, str]:
        """Channel -> the id it gave this fingerprint's delivery (issue key, incident number), for
        every channel that delivered it: where the problem's tickets are."""
        c = outbox.c
        query = (sa.select(c.channel, c.external_id).where(c.fingerprint == fingerprint, c.status == DELIVERED,
                                                           c.external_id.is_not(None)).order_by(c.id))
        with self.engine.connect() as conn:
            return {channel: external_id for channel, external_id in conn.execute(query)}

    def counts(self) -> dict[str, int]:
        query = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        with self.engine.connect() as conn:
            return {PENDING: 0, DELIVERED: 0, DEAD: 0} | dict(conn.execute(query).all())

    def requeue_dead(self, channel: str | None = None) -> int:
        """Give dead rows (of one channel) a fresh start, after the cause was fixed."""
        query = outbox.update().where(outbox.c.status == DEAD)
        if channel is not None:
            query = query.where(outbox.c.channel == channel)
        with self.engine.begin() as conn:
            return conn.execute(query.values(status=PENDING, attempts=0, next_attempt_at=self._at(0.0))).rowcount

    def claim(self, limit: int, lease: timedelta) -> list[dict]:
        """Lease up to `limit` rows due now (oldest first, paused channels skipped) to a new owner
        for `lease`, atomically: one UPDATE whose WHERE re-checks that each row is still free, so
        two senders never hold the same row."""
        c, owner, now = outbox.c, uuid.uuid4().hex, self._at(0.0)
        paused = sa.select(channel_pauses.c.channel).where(channel_pauses.c.until > now)
        due = sa.and_(c.status == PENDING, c.next_attempt_at <= now, c.channel.not_in(paused),
                      sa.or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now))
        candidates = sa.select(c.id).where(due).order_by(c.next_attempt_at, c.id).limit(limit)
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(c.id.in_(candidates.scalar_subquery()), due)
                         .values(lease_owner=owner, lease_expires_at=self._at(lease.total_seconds())))
            claimed = conn.execute(sa.select(outbox).where(c.lease_owner == owner).order_by(c.id))
            return [dict(r) for r in claimed.mappings()]

    def renew(self, owner: str, lease: timedelta) -> set[int]:
        """Extend to `lease` from now the lease of every unsent row `owner` still holds; their ids.

        A row missing from the answer was taken over by another sender after its lease ran out,
        or released by a channel pause: its claimer must not send it. A row still held by its
        claimer is held by nobody else, even if its first lease ran out meanwhile.
        """
        c = outbox.c
        query = (outbox.update().where(c.lease_owner == owner, c.status == PENDING)
                 .values(lease_expires_at=self._at(lease.total_seconds())).returning(c.id))
        with self.engine.begin() as conn:
            return set(conn.execute(query).scalars())

    def finish(self, row: dict, retry_in: float | None = None, audit: AuditEntry | None = None, **values) -> bool:
        """Update a claimed row and release its lease; False when the lease was lost meanwhile.

        retry_in: seconds from now until the row's next attempt. A row finished as delivered is
        stamped `delivered_at` now (both on the database's clock). audit: an entry appended to the
        audit trail in the same transaction, when the row was still held.
        """
        if retry_in is not None:
            values["next_attempt_at"] = self._at(retry_in)
        if values.get("status") == DELIVERED:
            values["delivered_at"] = self._at(0.0)
        query = (outbox.update().where(outbox.c.id == row["id"], outbox.c.lease_owner == row["lease_owner"])
                 .values(lease_owner=None, lease_expires_at=None, **values))
        with self.engine.begin() as conn:
            held = conn.execute(query).rowcount == 1
            if held and audit is not None:
                AuditRows(self.engine).append(conn, audit)
            return held

    def pause_channel(self, channel: str, seconds: float, owner: str) -> int:
        """No sender claims `channel` for `seconds` from now; `owner`'s unsent rows of it are
        released. Returns how many rows were released (no attempt is counted for them)."""
        until, c = self._at(seconds), outbox.c
        insert = INSERT[self.engine.dialect.name](channel_pauses).values(channel=channel, until=until)
        with self.engine.begin() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=["channel"], set_={"until": until}))
            return conn.execute(outbox.update().where(c.lease_owner == owner, c.channel == channel, c.status == PENDING)
                                .values(lease_owner=None, lease_expires_at=None)).rowcount

    def next_due(self) -> datetime | None:
        """When the earliest pending row can next be claimed (its retry time, lease and channel
        pause all past), or None when nothing is pending."""
        c, p = outbox.c, channel_pauses.c
        ready = self._greatest(c.next_attempt_at, sa.func.coalesce(c.lease_expires_at, c.next_attempt_at),
                               sa.func.coalesce(p.until, c.next_attempt_at))
        query = (sa.select(sa.func.min(ready)).select_from(outbox.outerjoin(channel_pauses, c.channel == p.channel))
                 .where(c.status == PENDING))
        with self.engine.connect() as conn:
            at = conn.execute(query).scalar()
        return _aware(at) if at is not None else None

    def _insert(self, conn: sa.Connection, alert: AlertRecord, channel: str, not_before: datetime | None) -> int:
        """Queue one row, due now on the database's clock, or at `not_before` if that is later."""
        due = self._at(0.0)
        if not_before is not None:
            due = self._greatest(due, sa.literal(not_before.astimezone(timezone.utc), sa.DateTime(timezone=True)))
        insert = INSERT[self.engine.dialect.name](outbox).on_conflict_do_nothing(
            index_elements=["fingerprint", "channel", "occurrence", "event"])
        return conn.execute(insert.values(
            fingerprint=alert.fingerprint, channel=channel, occurrence=alert.occurrence,
            payload_json=stored_json("payload_json", alert.to_dict()), status=PENDING, attempts=0, created_at=self.now(),
            next_attempt_at=due, event=alert.event)).rowcount


def _decoded(payload: str) -> dict | None:
    try:
        return loaded_json("payload_json", payload)
    except ValueError:
        return None
