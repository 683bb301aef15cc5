"""A checked batch made durable in the inference log, once per prediction id, before any ack.

Accepted rows land where the inference sensor and the production windows read them: a day of a
model is a folder `<root>/<kind>/<model>/<YYYY-MM-DD>.parquet/` of parts, one Parquet part per
batch (predictions by their timestamp's UTC day, labels by the day they arrived). One batch is
one commit:

1. in one transaction on the monitoring store, claim the batch's prediction ids in the dedupe
   index (`ingest_digests`, appended to, checked in memory: watchkeeper.store.ingest_rows; an id
   already there, from an earlier delivery or another consumer, is dropped from the batch); for what is new, write each part to a hidden temporary file in its
   day's folder and fsync it and the folder; record the part (`ingest_parts`), the dead letters,
   and the live detector's new state and alerts (watchkeeper.ingest.live);
2. commit: this is the point at which the batch is stored;
3. rename each temporary file to its part name (readers skip hidden files, so they see a whole
   part or nothing);
4. only then the caller acknowledges the messages to the broker.

Parts are sealed at rest like every row file (watchkeeper.security.sealed_files: one AES-GCM
envelope per part when a KMS is configured), and dead letters' payloads are sealed in the store
(watchkeeper.store.ingest_rows): a malformed event still holds a customer's data.

A crash before 2 leaves hidden garbage and unclaimed ids: the broker redelivers, the batch is
written again. A crash between 2 and 3 leaves committed temporary files: `recover` (run when a
consumer starts) renames each one whose part was committed, so nothing committed is lost, and
the ids it holds are claimed, so the redelivered events are not stored twice. A crash after 3
only costs a redelivery, which the index absorbs. Hence: every event in the log exactly once.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from watchkeeper.inference_log import INFERENCE, LABELS, SUFFIX
from watchkeeper.ingest.events import Checked
from watchkeeper.security.envelope import protect
from watchkeeper.security.sealed_files import ROWS
from watchkeeper.store import MonitoringStore

TMP_PREFIX = ".part-"
DAY_NS = 86_400 * 10**9
STALE_SECONDS = 3600.0   # an uncommitted temporary part this old belongs to no running batch
# WAL pages (4 KiB) before SQLite copies them back into the database file: at SQLite's default
# (1,000) every batch's commit also checkpoints, rewriting the index pages it dirtied (random
# digests dirty pages all over the index); at 20,000 a page dirtied by several batches is copied
# once. Commits stay fsynced (synchronous FULL): only when the copy happens changes.
CHECKPOINT_PAGES = 20_000



class Feed(Protocol):
    """What learns of a batch's new rows inside its transaction (watchkeeper.ingest.live)."""

    def remember(self, tx: sa.Connection, model: str, predictions: pd.DataFrame, day: str) -> None: ...

    def feed(self, tx: sa.Connection, model: str, labels: pd.DataFrame, day: str) -> None: ...


@dataclass
class Written:
    """What a batch added: new rows per kind, duplicates dropped, dead letters kept."""

    stored: dict[str, int] = field(default_factory=lambda: {INFERENCE: 0, LABELS: 0})
    duplicates: int = 0
    dead: int = 0


class LogWriter:
    """Appends checked batches to the inference log under `root`, idempotently by prediction id."""

    def __init__(self, root: str | Path, store: MonitoringStore, source: str) -> None:
        self.root, self.store, self.source = Path(root), store, source
        self.rows = store.ingest_rows

    def commit(self, checked: Checked, arrival_day: str, feed: Feed | None = None) -> Written:
        """Store a batch (steps 1-3 above); the messages may be acknowledged when this returns."""
        written, moves = Written(dead=len(checked.dead)), []
        with self.store.transaction() as tx:
            if tx.dialect.name == "sqlite":
                tx.exec_driver_sql(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            for (model, kind), frame in sorted(checked.rows.items()):
                frame = frame.drop_duplicates("prediction_id", keep="first")
                new = self.rows.claim(tx, model, kind, frame["prediction_id"].tolist())
                written.duplicates += len(checked.rows[(model, kind)]) - int(new.sum())
                frame = frame if new.all() else frame[new]
                if frame.empty:
                    continue
                written.stored[kind] += len(frame)
                moves += self._stage(tx, model, kind, frame, arrival_day)
                if feed is not None and kind == INFERENCE:   # sorted: a model's predictions before its labels
                    feed.remember(tx, model, frame, arrival_day)
                elif feed is not None:
                    feed.feed(tx, model, frame.reset_index(drop=True), arrival_day)
            self.rows.dead_letter(tx, self.source, checked.dead)
        for tmp, final in moves:
            os.replace(tmp, final)
        return written

    def _stage(self, tx: sa.Connection, model: str, kind: str, frame: pd.DataFrame, arrival_day: str) -> list[tuple[Path, Path]]:
        """Write the batch's rows of one model and kind as temporary parts, one per day, fsynced,
        and record them in the transaction; returns (temporary, final) paths."""
        if kind == INFERENCE:
            days = frame["timestamp"].array.asi8 // DAY_NS    # UTC days since 1970, without formatting each row
            by_day = {str(np.datetime64(int(d), "D")): frame[days == d] for d in np.unique(days)}
        else:
            by_day = {arrival_day: frame}
        moves = []
        for day, rows in by_day.items():
            folder = self.root / kind / model / f"{day}{SUFFIX}"
            if folder.is_file():
                raise IngestWriteError(f"{folder} is a file written by another writer; ingestion appends parts "
                                       "to a folder of that name")
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{SUFFIX}"
            tmp, final = folder / f".{name}.tmp", folder / name
            _write_synced(rows.reset_index(drop=True), tmp)
            _fsync_folder(folder)
            self.rows.add_part(tx, final.relative_to(self.root).as_posix(), len(rows))
            moves.append((tmp, final))
        return moves

    def recover(self) -> int:
        """Roll forward parts committed by a consumer that died before renaming them; remove
        stale uncommitted ones. Returns how many parts were rolled forward."""
        found: dict[str, Path] = {}
        now = time.time()
        for kind in (INFERENCE, LABELS):
            for tmp in (self.root / kind).glob(f"*/*{SUFFIX}/{TMP_PREFIX}*{SUFFIX}.tmp"):
                final = tmp.with_name(tmp.name[1:].removesuffix(".tmp"))
                found[final.relative_to(self.root).as_posix()] = tmp
        committed = self.rows.committed(found)
        for name, tmp in found.items():
            if name in committed:
                os.replace(tmp, self.root / name)
            elif now - _mtime(tmp) > STALE_SECONDS:
                tmp.unlink(missing_ok=True)
        return len(committed)


class IngestWriteError(RuntimeError):
    """The inference log cannot take a batch (one line)."""


def _write_synced(frame: pd.DataFrame, path: Path) -> None:
    """One part, sealed when a KMS is configured, on disk (fsynced) before the commit names it."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    with open(path, "wb") as out:
        out.write(protect(buffer.getvalue(), ROWS))
        out.flush()
        os.fsync(out.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the new temporary file's name durable before the commit that refers to it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
