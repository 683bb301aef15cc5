"""Erasure: all of one model's data, or one subject's rows, deleted on request.

``erase_model`` deletes the model's drop-folder files (inference, labels, windows) and every
stored row naming it. ``erase_subject`` rewrites the model's row files without the rows whose
subject column equals the subject (the files stay encrypted when a KMS is configured); the
store holds only aggregates with small-count suppression, so it has nothing of one subject.

Each erasure ends with an :class:`ErasureEvent` sent to every listener registered with
:func:`on_erasure` (the audit log records it there) and logged as a structured event. The
subject is never logged or handed on in clear, only its SHA-256 digest: the erasure record must
not itself hold what was erased.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from watchkeeper.inference_log import INFERENCE, LABELS, WINDOWS, SUFFIX, read_file
from watchkeeper.security.sealed_files import write_parquet

log = logging.getLogger("watchkeeper.privacy")
STREAMS = (INFERENCE, LABELS, WINDOWS)


class ErasureError(ValueError):
    """An erasure that cannot be done as asked (one line)."""


@dataclass(frozen=True)
class ErasureEvent:
    """What an erasure did, without what it erased."""

    model: str
    subject_digest: str | None          # sha256 of the subject id, for `--subject`
    files_deleted: int
    rows_deleted: int                   # rows taken out of row files (subject) or out of the store (model)
    tables: dict[str, int] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


_listeners: list[Callable[[ErasureEvent], None]] = []


def on_erasure(listener: Callable[[ErasureEvent], None]) -> Callable[[ErasureEvent], None]:
    """Call `listener` with every erasure's event (e.g. to append it to the audit log); returns it."""
    _listeners.append(listener)
    return listener


def erase_model(root: str | Path, store, model: str) -> ErasureEvent:
    """Delete every file and stored row of `model`."""
    from watchkeeper.store.erasure import delete_model

    files = 0
    for stream in STREAMS:
        folder = Path(root, stream, model)
        if folder.is_dir():
            files += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
    tables = delete_model(store.engine, model) if store is not None else {}
    return _announce(ErasureEvent(model, None, files, sum(tables.values()), tables))


def erase_subject(root: str | Path, model: str, subject: str, column: str | None) -> ErasureEvent:
    """Rewrite `model`'s row files without the rows whose `column` equals `subject`.

    Labels carry no subject column: a label row goes when its prediction id belonged to the subject.
    """
    if not column:
        raise ErasureError(f"{model}: no subject column is configured (privacy.subject_column in the "
                           "monitoring config), so rows cannot be told apart by subject")
    files, rows, ids = 0, 0, set()
    for stream in (INFERENCE, WINDOWS):
        for path in sorted(Path(root, stream, model).glob(f"*{SUFFIX}")):
            frame = read_file(path)
            if column not in frame.columns:
                raise ErasureError(f"{path}: no subject column {column!r}")
            mine = frame[column].astype(str) == subject
            ids |= set(frame.loc[mine, "prediction_id"]) if "prediction_id" in frame.columns else set()
            removed, kept = _rewrite(path, frame, mine)
            files, rows = files + removed, rows + kept
    for path in sorted(Path(root, LABELS, model).glob(f"*{SUFFIX}")):
        frame = read_file(path)
        removed, kept = _rewrite(path, frame, frame["prediction_id"].isin(ids))
        files, rows = files + removed, rows + kept
    return _announce(ErasureEvent(model, hashlib.sha256(subject.encode()).hexdigest(), files, rows))


def _rewrite(path: Path, frame, mine) -> tuple[int, int]:
    """The file without the rows `mine` (deleted when none is left); (files deleted, rows removed)."""
    count = int(mine.sum())
    if not count:
        return 0, 0
    if count == len(frame):
        path.unlink()
        return 1, count
    write_parquet(frame[~mine], path)
    return 0, count


def _announce(event: ErasureEvent) -> ErasureEvent:
    log.info("erasure", extra={"event": "erasure", **asdict(event)})
    for listener in _listeners:
        listener(event)
    return event
