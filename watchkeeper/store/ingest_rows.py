"""Stream ingestion's rows: the dedupe index by prediction id, committed parts, dead letters.

Every writer takes the caller's connection: a batch's new ids, its part and its dead letters
commit in the transaction that makes the batch durable (watchkeeper.ingest.writer), before the
broker is acknowledged.

The dedupe index is append-only: a batch's new ids are one row of `ingest_digests` (model, kind,
the SHA-256 of each id concatenated), and this process holds what is committed in memory (a
`DigestSet` per model and kind), so a claim costs the same at a million stored ids as at none.
Claims of a model are serialised (SQLite: the database's write lock, taken by the claim's first
statement; PostgreSQL: an advisory lock per model), so under that lock the rows of a model are
committed in `seq` order, and catching up with what other consumers committed is reading the rows
after the last one this process read: two consumers that race on the same id see it returned to
exactly one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import numpy as np
import sqlalchemy as sa

from watchkeeper.security.envelope import protect_text, reveal_text
from watchkeeper.store.digest_set import DIGEST_BYTES, DigestSet, digests_of, keys_of
from watchkeeper.store.outbox import INSERT
from watchkeeper.store.schema import dead_letters, ingest_digests, ingest_parts

PAYLOAD_CHARS = 65_536  # a dead letter keeps at most this much of the event
PAYLOAD = "store dead_letters.payload"   # the purpose a payload is sealed for (a malformed event is still data)


class DedupeIndexError(RuntimeError):
    """A stored row of the dedupe index that is not whole digests: the consumer stops rather than guess
    which events it already stored."""


class IngestRows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._index: dict[tuple[str, str], DigestSet] = {}   # (model, kind) -> committed digests read so far
        self._read_to: dict[tuple[str, str], int] = {}       # (model, kind) -> the last seq read into it

    def claim(self, conn: sa.Connection, model: str, kind: str, ids: Sequence[str]) -> np.ndarray:
        """Record distinct `ids` as stored; returns a mask of those not stored before (the ones to write).

        The index keeps each id's SHA-256, not the id: a prediction id names a served prediction,
        and the store must hold no row identifiers in clear (docs/security.md). The batch's row is
        inserted first (empty): on SQLite that takes the write lock before anything is read, so
        no other consumer commits between the catch-up and this batch's row."""
        self.lock_model(conn, model)
        seq = conn.execute(ingest_digests.insert().values(model=model, kind=kind, digests=b"", committed_at=_now())
                           .returning(ingest_digests.c.seq)).scalar_one()
        digests = digests_of(ids)
        keys = keys_of(digests)
        new = ~self._caught_up(conn, model, kind, below=seq).contains(keys)
        mine = ingest_digests.c.seq == seq
        if new.any():
            kept = np.frombuffer(digests, dtype=f"S{DIGEST_BYTES}")[new].tobytes()
            conn.execute(ingest_digests.update().where(mine).values(digests=kept))
        else:
            conn.execute(ingest_digests.delete().where(mine))
        return new

    def stored_among(self, conn: sa.Connection, model: str, kind: str, ids: Sequence[str]) -> list[str]:
        """Which of `ids` are stored as `kind` of `model`. Called under the model's claim lock (the
        writer asks about labels after claiming the model's predictions), so it sees every commit."""
        index = self._caught_up(conn, model, kind)
        if not len(index) or not ids:
            return []
        found = index.contains(keys_of(digests_of(ids)))
        return [i for i, hit in zip(ids, found) if hit]

    def _caught_up(self, conn: sa.Connection, model: str, kind: str, below: int | None = None) -> DigestSet:
        """The (model, kind) index with every committed row read into it (the first call reads them
        all: a consumer's start-up). `below` leaves out the caller's own, uncommitted row."""
        key = (model, kind)
        index = self._index.setdefault(key, DigestSet())
        rows = ingest_digests.c
        query = (sa.select(rows.seq, rows.digests)
                 .where(rows.model == model, rows.kind == kind, rows.seq > self._read_to.get(key, 0)))
        if below is not None:
            query = query.where(rows.seq < below)
        for seq, digests in conn.execute(query.order_by(rows.seq)):
            if not isinstance(digests, bytes) or len(digests) % DIGEST_BYTES:
                raise DedupeIndexError(
                    f"ingest_digests row {seq} of {model!r} ({kind}) is not whole {DIGEST_BYTES}-byte SHA-256 digests; "
                    "the dedupe index is damaged: restore the store from a backup (ingesting on could store events twice)")
            index.add(keys_of(digests))
            self._read_to[key] = seq
        return index

    def stored(self, model: str, kind: str) -> int:
        """How many events of a model's kind are stored."""
        query = (sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(ingest_digests.c.digests)), 0))
                 .where(ingest_digests.c.model == model, ingest_digests.c.kind == kind))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar()) // DIGEST_BYTES

    def lock_model(self, conn: sa.Connection, model: str) -> None:
        """Serialise claims and detector-state writes of one model until the transaction ends. SQLite
        needs nothing more: the claim's first INSERT takes the database's write lock."""
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


def _now() -> datetime:
    return datetime.now(timezone.utc)
