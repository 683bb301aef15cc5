"""The alert outbox: every notification is a row before it is a message, so none is ever lost.

Writing an alert and delivering it are two steps. The problem log (watchkeeper.problems)
records the problem and queues the policy's plan as outbox rows (one per fingerprint, channel and
occurrence; enqueueing the same thing twice is a no-op), in the monitoring store's database and
in the verdict's transaction; the rows and their SQL are the store's (watchkeeper.store.outbox).
A `Sender` later claims due rows with a
lease, sends them, and marks each delivered, retried (exponential backoff with jitter, or the
service's Retry-After) or dead (a permanent error, or too many attempts) with the error.

Leases, due times and pauses are timed by the database's clock (watchkeeper.store.outbox), never
a sender's. A sender renews its batch's lease once half of it has passed and sends only the
rows it still holds, so a slow batch cannot outlive its claim: a lease has to cover one send,
not a batch.

A sender killed between sending and marking leaves its rows leased; when the lease expires
another sender (or the restarted one) sends them again, and the channel's idempotency by
fingerprint turns that second send into an update. Delivery is at least once from the outbox,
and exactly once as seen in Slack, Jira and ServiceNow, whose channels look the fingerprint up
before creating anything. A Teams webhook has no read API: there a send whose answer was lost
may post a second card (watchkeeper/alerting/channels/teams.py).

Before a send, the channel's destination is checked against the residency policy
(watchkeeper.security.residency): a channel outside it gets nothing, its row is dead with the
reason, and the refusal is audited. Every delivery (a ticket, for Jira and ServiceNow) is
audited in the transaction that marks its row delivered.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta

from watchkeeper.alerting.record import AlertRecord, Channel, ChannelError, Delivery
from watchkeeper.security.envelope import EncryptionError
from watchkeeper.security import residency
from watchkeeper.security.audit import ALERT_DELIVERED, RESIDENCY_REFUSED, TICKET, Actor, AuditEntry, now
from watchkeeper.store.outbox import DEAD, DELIVERED, PENDING, Outbox
from watchkeeper.store.sealed import loaded_json

__all__ = ["DEAD", "DELIVERED", "PENDING", "DeliveryStats", "Outbox", "OutboxChannel", "Sender"]


class OutboxChannel:
    """The local destination: the outbox row itself is the notification, shown in the Dagster UI.

    It is the embedded default's only channel and, in production, the record that every alert
    was raised even when it was routed nowhere else.
    """

    local = True   # the row in the store is the notification: nothing leaves

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
    actor: who delivers, in the audit trail (default: $WATCHKEEPER_ACTOR or the OS user).
    clock, sleep: this sender's clock only measures durations (the budget of a pass, the timeout
        of `drain`); no time it stores or compares comes from it.
    pause_after: consecutive failures of one channel after which no sender claims its rows for a
        backoff that grows with each further failure (the rows keep their place and no attempt is
        counted): an outage costs one request per backoff step, not one timeout per queued alert.
    """

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 20, base_delay: float = 2.0,
                 max_delay: float = 900.0, lease_seconds: float = 120.0, batch_size: int = 20,
                 pause_after: int = 5, seed: int | None = None, actor: Actor | None = None) -> None:
        self.outbox = outbox
        self.actor = actor or Actor()
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
            alert = AlertRecord.from_dict(loaded_json("payload_json", row["payload_json"]))
        except EncryptionError as e:                   # a key to configure, not a broken row: retried
            return self._fail(row, str(e))
        except (ValueError, TypeError) as e:           # retrying cannot repair a row: dead, with why
            return self._fail(row, f"unreadable payload ({type(e).__name__}: {e})", permanent=True)
        refused = _residency_problem(channel)
        if refused is not None:   # nothing is sent: the row is dead with the reason, and audited
            return self._fail(row, str(refused), permanent=True, audit=self._entry(
                RESIDENCY_REFUSED, row, alert, {"channel": name, "data_class": refused.data_class,
                                                "destination": refused.destination, "location": refused.location}))
        try:
            delivery = channel.send(alert)
        except ChannelError as e:
            return self._fail(row, str(e), e.permanent, e.retry_after)
        except Exception as e:  # a bug or an unwrapped client error: retried and recorded, never lost.
            # Only its type is kept: a client library's message can carry a URL or header with a secret.
            return self._fail(row, f"{type(e).__name__} raised by channel {name!r} (not a ChannelError)")
        audit = self._entry(TICKET if getattr(channel, "opens_tickets", False) else ALERT_DELIVERED, row, alert,
                            {"channel": name, "external_id": delivery.external_id, "action": delivery.action,
                             "occurrence": alert.occurrence, "severity": alert.severity})
        self.outbox.finish(row, status=DELIVERED, attempts=row["attempts"] + 1, external_id=delivery.external_id,
                           last_error=None, audit=audit)
        self.failures_[name] = 0
        return DeliveryStats(delivered=1)

    def _entry(self, action: str, row: dict, alert: AlertRecord, details: dict) -> AuditEntry:
        return AuditEntry(0, now(), self.actor.name, action, row["fingerprint"], self.actor.run_id, alert.window,
                          details)

    def _fail(self, row: dict, error: str, permanent: bool = False, retry_after: float | None = None,
              audit: AuditEntry | None = None) -> DeliveryStats:
        attempts = row["attempts"] + 1
        if permanent or attempts >= self.max_attempts:
            reason = error if permanent else f"gave up after {attempts} attempts: {error}"
            self.outbox.finish(row, status=DEAD, attempts=attempts, last_error=reason[:2000], audit=audit)
            return DeliveryStats(dead=1)
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        self.outbox.finish(row, retry_in=delay, attempts=attempts, last_error=error[:2000])
        name = row["channel"]
        self.failures_[name] += 1
        if self.failures_[name] < self.pause_after:
            return DeliveryStats(retried=1)
        pause = self.backoff(self.failures_[name] - self.pause_after + 1)
        return DeliveryStats(retried=1, deferred=self.outbox.pause_channel(name, pause, row["lease_owner"]))


def _residency_problem(channel: Channel) -> residency.ResidencyError | None:
    """Why the residency policy refuses this channel's destination (None: allowed, or no policy)."""
    if getattr(channel, "local", False):
        return None
    policy = residency.active_policy()
    if policy is None:
        return None
    return policy.problem(residency.ALERTS, f"channel {channel.name}", getattr(channel, "destination", None))
