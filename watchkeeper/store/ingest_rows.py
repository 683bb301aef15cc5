"""Stream ingestion's rows: the dedupe index by prediction id, committed parts, dead letters.

Every writer takes the caller's connection: a batch's new ids, its part and its dead letters
commit in the transaction that makes the batch durable (watchkeeper.ingest.writer), before the
broker is acknowledged. The id claim is one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING
per chunk, so a batch of thousands costs a few statements, and two consumers that race on the
same id see it returned to exactly one of them (the other waits for its commit, then skips it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import sqlalchemy as sa

from watchkeeper.security.envelope import protect_text, reveal_text
from watchkeeper.store.outbox import INSERT
from watchkeeper.store.schema import dead_letters, ingest_parts, ingested

CHUNK = 5_000          # ids per INSERT: 3 parameters each, under SQLite's 32,766 variables
PAYLOAD_CHARS = 65_536  # a dead letter keeps at most this much of the event
PAYLOAD = "store dead_letters.payload"   # the purpose a payload is sealed for (a malformed event is still data)


class IngestRows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, conn: sa.Connection, model: str, kind: str, ids: Sequence[str]) -> set[str]:
        """Record `ids` as stored; returns those that were not stored before (the ones to write).

        The index keeps each id's SHA-256, not the id: a prediction id names a served prediction,
        and the store must hold no row identifiers in clear (docs/security.md)."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        by_digest = {id_digest(i): i for i in ids}
        digests = sorted(by_digest)
        new: set[str] = set()
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start:start + CHUNK]
            values = ",".join([f"({mark},{mark},{mark})"] * len(chunk))
            params = tuple(v for i in chunk for v in (model, kind, i))
            sql = (f"INSERT INTO {ingested.name} (model, kind, prediction_id) VALUES {values} "  # our table name and placeholders only  # nosec B608
                   "ON CONFLICT DO NOTHING RETURNING prediction_id")
            cursor = conn.connection.dbapi_connection.cursor()   # rows fetched in C: no per-row wrapper
            try:
                cursor.execute(sql, params)
                new.update(by_digest[row[0]] for row in cursor.fetchall())
            finally:
                cursor.close()
        return new

    def stored_among(self, conn: sa.Connection, model: str, kind: str, ids: Sequence[str]) -> list[str]:
        """Which of `ids` are stored as `kind` of `model`: one indexed probe when none of that kind
        is (the common case for a batch of predictions), else one IN query per chunk."""
        of_kind = (ingested.c.model == model) & (ingested.c.kind == kind)
        if conn.execute(sa.select(sa.literal(1)).where(of_kind).limit(1)).first() is None:
            return []
        by_digest = {id_digest(i): i for i in ids}     # the index keeps digests (see `claim`)
        digests = list(by_digest)
        found: list[str] = []
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start:start + CHUNK]
            query = sa.select(ingested.c.prediction_id).where(of_kind, ingested.c.prediction_id.in_(chunk))
            found += [by_digest[d] for d in conn.execute(query).scalars()]
        return found

    def stored(self, model: str, kind: str) -> int:
        """How many events of a model's kind are stored."""
        query = sa.select(sa.func.count()).where(ingested.c.model == model, ingested.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def lock_model(self, conn: sa.Connection, model: str) -> None:
        """Serialise writers of one model's detector state until the transaction ends. SQLite needs
        nothing more: the batch's first INSERT already took the database's write lock."""
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:model))"), {"model": model})

    def add_part(self, conn: sa.Connection, path: str, rows: int) -> None:
        conn.execute(ingest_parts.insert().values(path=path, rows=rows, committed_at=_now()))

    def committed(self, paths: Iterable[str]) -> set[str]:
        """Which of `paths` were committed (a crash may have left them unrenamed)."""
        paths = list(paths)
        if not paths:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(ingest_parts.c.path).where(ingest_parts.c.path.in_(paths))).scalars())

    def dead_letter(self, conn: sa.Connection, source: str, letters: Sequence[tuple[str, str, str]]) -> None:
        """Keep malformed events as (message_id, reason, payload); a redelivered one is kept once. The
        payload is sealed when a KMS is configured; the reason (ours, about the event) stays readable."""
        if not letters:
            return
        insert = INSERT[conn.dialect.name]
        rows = [{"source": source, "message_id": m, "reason": r, "payload": protect_text(p[:PAYLOAD_CHARS], PAYLOAD),
                 "received_at": _now()}
                for m, r, p in letters]
        conn.execute(insert(dead_letters).on_conflict_do_nothing(index_elements=["source", "message_id"]), rows)

    def dead_letters(self, source: str | None = None) -> list[dict]:
        """Dead letters, oldest first: {source, message_id, reason, payload, received_at}, payloads
        decrypted (EncryptionError, one line, without the key)."""
        query = sa.select(dead_letters).order_by(dead_letters.c.id)
        if source is not None:
            query = query.where(dead_letters.c.source == source)
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return [{**row, "payload": reveal_text(row["payload"], PAYLOAD)} for row in rows]


def id_digest(prediction_id: str) -> str:
    return hashlib.sha256(str(prediction_id).encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)
