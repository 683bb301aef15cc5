"""The alert outbox: every notification is a row before it is a message, so none is ever lost.

Writing an alert and delivering it are two steps. The problem log (watchkeeper.problems)
records the problem and queues the policy's plan as rows here (one per fingerprint, channel and
occurrence; enqueueing the same thing twice is a no-op), in the monitoring store's database and
in the verdict's transaction. A `Sender` later claims due rows with a
lease, sends them, and marks each delivered, retried (exponential backoff with jitter, or the
service's Retry-After) or dead (a permanent error, or too many attempts) with the error.

Every time the outbox stores or compares (lease expiry, due times, channel pauses) is read from
the database's clock (`now()` on PostgreSQL; on SQLite, the clock of the host its writers share),
never from a sender's: a sender whose clock runs ahead cannot see another's lease as expired.
A sender renews its batch's lease once half of it has passed and sends only the rows it still
holds, so a slow batch cannot outlive its claim: a lease has to cover one send, not a batch.

A sender killed between sending and marking leaves its rows leased; when the lease expires
another sender (or the restarted one) sends them again, and the channel's idempotency by
fingerprint turns that second send into an update. Delivery is at least once from the outbox,
and exactly once as seen in Slack, Jira and ServiceNow, whose channels look the fingerprint up
before creating anything. A Teams webhook has no read API: there a send whose answer was lost
may post a second card (watchkeeper/alerting/channels/teams.py).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from watchkeeper.alerting.record import AlertRecord, Channel, ChannelError, Delivery
from watchkeeper.store.migrate import ensure_current
from watchkeeper.store.schema import channel_pauses, outbox

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
        """When each channel was last given this fingerprint (queued counts: it will arrive)."""
        query = (sa.select(outbox.c.channel, sa.func.max(outbox.c.created_at))
                 .where(outbox.c.fingerprint == fingerprint).group_by(outbox.c.channel))
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

    def finish(self, row: dict, retry_in: float | None = None, **values) -> bool:
        """Update a claimed row and release its lease; False when the lease was lost meanwhile.

        retry_in: seconds from now until the row's next attempt. A row finished as delivered is
        stamped `delivered_at` now (both on the database's clock).
        """
        if retry_in is not None:
            values["next_attempt_at"] = self._at(retry_in)
        if values.get("status") == DELIVERED:
            values["delivered_at"] = self._at(0.0)
        query = (outbox.update().where(outbox.c.id == row["id"], outbox.c.lease_owner == row["lease_owner"])
                 .values(lease_owner=None, lease_expires_at=None, **values))
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount == 1

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
            index_elements=["fingerprint", "channel", "occurrence"])
        return conn.execute(insert.values(
            fingerprint=alert.fingerprint, channel=channel, occurrence=alert.occurrence,
            payload_json=json.dumps(alert.to_dict()), status=PENDING, attempts=0, created_at=self.now(),
            next_attempt_at=due)).rowcount


class OutboxChannel:
    """The local destination: the outbox row itself is the notification, shown in the Dagster UI.

    It is the embedded default's only channel and, in production, the record that every alert
    was raised even when it was routed nowhere else.
    """

    def __init__(self, name: str = "outbox") -> None:
        self.name = name

    def send(self, alert: AlertRecord) -> Delivery:
        return Delivery(self.name, alert.fingerprint, "posted")


@dataclass
class DeliveryStats:
    """What one or more sender passes did; `attempts` = delivered + retried + dead."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0          # claimed rows released unsent because their channel was paused

    @property
    def attempts(self) -> int:
        return self.delivered + self.retried + self.dead

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class Sender:
    """Delivers due outbox rows through their channels; safe to run as several processes.

    max_attempts: a row that failed this many times (transiently) is dead, with its last error.
    base_delay, max_delay: the backoff before attempt n+1 is base_delay * 2**(n-1), capped at
        max_delay, times a jitter factor in [0.5, 1] so retries of many rows spread out; a
        Retry-After from the service replaces it.
    lease_seconds: how long a claim holds a row, on the database's clock. Once half of it has
        passed, the sender renews its batch's lease before the next send and skips the rows it no
        longer holds, so a batch may take any time, but one send must end within half a lease
        (lease_seconds > 2 x the channels' timeout). It is also how long rows of a killed sender
        wait before someone sends them again.
    clock, sleep: this sender's clock only measures durations (the budget of a pass, the timeout
        of `drain`); no time it stores or compares comes from it.
    pause_after: consecutive failures of one channel after which no sender claims its rows for a
        backoff that grows with each further failure (the rows keep their place and no attempt is
        counted): an outage costs one request per backoff step, not one timeout per queued alert.
    """

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 20, base_delay: float = 2.0,
                 max_delay: float = 900.0, lease_seconds: float = 120.0, batch_size: int = 20,
                 pause_after: int = 5, seed: int | None = None) -> None:
        self.outbox = outbox
        self.channels = channels
        self.clock = clock
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.pause_after = pause_after
        self.seed = seed
        self._rng = random.Random(seed)
        self.failures_: Counter = Counter()   # consecutive failures per channel, across passes

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return min(self.max_delay, self.base_delay * 2 ** (attempts - 1)) * (0.5 + 0.5 * self._rng.random())

    def run_once(self, limit: int = 100, budget: float | None = None) -> DeliveryStats:
        """Claim and deliver up to `limit` due rows, in batches, claiming no new batch after
        `budget` seconds (a Dagster sensor tick must end within 60 s); returns what happened."""
        stats, start = DeliveryStats(), self.clock()
        while stats.claimed < limit and (budget is None or self.clock() - start < budget):
            claimed_at = self.clock()
            rows = self.outbox.claim(min(self.batch_size, limit - stats.claimed), self.lease)
            if not rows:
                break
            stats.claimed += len(rows)
            stats += self._deliver_batch(rows, claimed_at)
        return stats

    def drain(self, timeout: float | None = None, poll: float = 1.0) -> DeliveryStats:
        """Deliver until nothing is pending (or `timeout` seconds passed), sleeping until rows come due."""
        stats, deadline = DeliveryStats(), None if timeout is None else self.clock() + timeout
        while deadline is None or self.clock() < deadline:
            stats += self.run_once()
            due = self.outbox.next_due()
            if due is None:
                break
            wait = min(poll, max(0.0, (due - self.outbox.database_now()).total_seconds()))
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - self.clock()))
            self.sleep(wait)
        return stats

    def _deliver_batch(self, rows: list[dict], claimed_at: float) -> DeliveryStats:
        """Send a claimed batch in order, each row only while this sender holds it with at least half
        a lease left.

        The lease ends no earlier than `claimed_at` (read before the claim) plus a lease, whatever
        either clock says, as both run at the same rate. Past half of it, the batch's lease is
        renewed before the next send and rows no longer held (taken over meanwhile) are skipped;
        rows of a channel paused by this batch were released by the pause and are skipped too.
        """
        stats, held, held_since = DeliveryStats(), {row["id"] for row in rows}, claimed_at
        for row in rows:
            if self.clock() - held_since >= self.lease.total_seconds() / 2:
                held_since = self.clock()
                held = self.outbox.renew(row["lease_owner"], self.lease)
            if row["id"] not in held:
                continue
            outcome = self._deliver(row)
            if outcome.deferred:
                held -= {other["id"] for other in rows if other["channel"] == row["channel"]}
            stats += outcome
        return stats

    def _deliver(self, row: dict) -> DeliveryStats:
        """Send one claimed row and record the outcome."""
        name = row["channel"]
        channel = self.channels.get(name)
        if channel is None:
            return self._fail(row, f"no channel named {name!r} in this sender", permanent=True)
        try:
            alert = AlertRecord.from_dict(json.loads(row["payload_json"]))
        except (ValueError, TypeError) as e:           # retrying cannot repair a row: dead, with why
            return self._fail(row, f"unreadable payload ({type(e).__name__}: {e})", permanent=True)
        try:
            delivery = channel.send(alert)
        except ChannelError as e:
            return self._fail(row, str(e), e.permanent, e.retry_after)
        except Exception as e:  # a bug or an unwrapped client error: retried and recorded, never lost.
            # Only its type is kept: a client library's message can carry a URL or header with a secret.
            return self._fail(row, f"{type(e).__name__} raised by channel {name!r} (not a ChannelError)")
        self.outbox.finish(row, status=DELIVERED, attempts=row["attempts"] + 1, external_id=delivery.external_id,
                           last_error=None)
        self.failures_[name] = 0
        return DeliveryStats(delivered=1)

    def _fail(self, row: dict, error: str, permanent: bool = False,
              retry_after: float | None = None) -> DeliveryStats:
        attempts = row["attempts"] + 1
        if permanent or attempts >= self.max_attempts:
            reason = error if permanent else f"gave up after {attempts} attempts: {error}"
            self.outbox.finish(row, status=DEAD, attempts=attempts, last_error=reason[:2000])
            return DeliveryStats(dead=1)
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        self.outbox.finish(row, retry_in=delay, attempts=attempts, last_error=error[:2000])
        name = row["channel"]
        self.failures_[name] += 1
        if self.failures_[name] < self.pause_after:
            return DeliveryStats(retried=1)
        pause = self.backoff(self.failures_[name] - self.pause_after + 1)
        return DeliveryStats(retried=1, deferred=self.outbox.pause_channel(name, pause, row["lease_owner"]))


def _decoded(payload: str) -> dict | None:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
