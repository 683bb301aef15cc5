"""The audit trail's rows: appended one at a time under a lock, read in sequence order.

The chain (hashes, verification) is watchkeeper.security.audit's; this module keeps it from
forking. Appending reads the newest entry and writes the next one, so two writers must not
interleave: on PostgreSQL a transaction-scoped advisory lock serialises appends (held until the
caller's transaction commits, so an entry appended in a verdict's transaction is in the chain
exactly when the verdict is); on SQLite the append first takes the database's write lock (a
write that changes nothing), which every other writer then waits for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import sqlalchemy as sa

from watchkeeper.security.audit import GENESIS, AuditEntry, Broken, seal, verify
from watchkeeper.store.schema import audit_log

_LOCK_ID = 0x5741554454   # pg_advisory_xact_lock key: "WAUDT"
_PAGE = 5000


class AuditRows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, conn: sa.Connection, entry: AuditEntry) -> AuditEntry:
        """Seal `entry` after the newest one and insert it, in `conn`'s transaction."""
        self._lock(conn)
        head = conn.execute(sa.select(audit_log.c.seq, audit_log.c.hash)
                            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        seq, prev = (head.seq + 1, head.hash) if head is not None else (1, GENESIS)
        sealed = seal(AuditEntry(seq, entry.at, entry.actor, entry.action, entry.subject, entry.run_id,
                                 entry.partition, dict(entry.details)), prev)
        conn.execute(audit_log.insert().values(
            seq=sealed.seq, at=sealed.at, actor=sealed.actor, action=sealed.action, subject=sealed.subject,
            run_id=sealed.run_id, partition=sealed.partition, details_json=json.dumps(sealed.details, sort_keys=True),
            prev_hash=sealed.prev_hash, hash=sealed.hash))
        return sealed

    def latest(self, conn: sa.Connection, action: str, subject: str) -> AuditEntry | None:
        """The newest entry of `action` on `subject` (read after `_lock` to decide on an append)."""
        row = conn.execute(sa.select(audit_log).where(audit_log.c.action == action, audit_log.c.subject == subject)
                           .order_by(audit_log.c.seq.desc()).limit(1)).mappings().first()
        return _entry(row) if row is not None else None

    def append_if_changed(self, conn: sa.Connection, entry: AuditEntry, key: str) -> AuditEntry | None:
        """Append `entry` unless the newest entry of its action and subject has the same `details[key]`
        (checked under the append lock, so two workers starting together record a change once)."""
        self._lock(conn)
        last = self.latest(conn, entry.action, entry.subject)
        if last is not None and last.details.get(key) == entry.details.get(key):
            return None
        return self.append(conn, entry)

    def _lock(self, conn: sa.Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        else:   # any write takes SQLite's one write lock for the rest of the transaction
            conn.execute(audit_log.delete().where(sa.false()))

    def entries(self, action: str | None = None) -> Iterator[AuditEntry]:
        """Every entry (of one action), by sequence number, read in pages (a trail may be long).

        A row whose details are not JSON comes back with them as {"unreadable": text}: its hash
        then fails, and verification names it instead of crashing.
        """
        after = 0
        while True:
            query = sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(_PAGE)
            if action is not None:
                query = query.where(audit_log.c.action == action)
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            yield from map(_entry, rows)
            if len(rows) < _PAGE:
                return
            after = rows[-1]["seq"]


def verify_trail(engine: sa.Engine) -> tuple[int, Broken | None, str | None]:
    """(entries read, the first bad entry or None, the newest entry's hash), without migrating the
    store (a verifier only reads). A ValueError when the store has no audit trail."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(audit_log.name):
            raise ValueError("this store has no audit trail (its schema predates it: run `watchkeeper db upgrade`)")
    count, head = 0, None

    def counted() -> Iterator[AuditEntry]:
        nonlocal count, head
        for entry in AuditRows(engine).entries():
            count, head = count + 1, entry.hash
            yield entry

    broken = verify(counted())
    return count, broken, head


def _entry(row) -> AuditEntry:
    try:
        details = json.loads(row["details_json"])
    except (TypeError, ValueError):
        details = {"unreadable": str(row["details_json"])}
    return AuditEntry(row["seq"], row["at"], row["actor"], row["action"], row["subject"], row["run_id"],
                      row["partition"], details, row["prev_hash"], row["hash"])
