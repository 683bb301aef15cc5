"""Retention per class of data: production rows, aggregates and alerts each kept so many days.

Production rows (the drop folder's inference and label files, and the kept windows) identify
people and are kept the shortest; aggregates (the store's results: drift, metrics, verdicts)
carry no rows and are kept for trend and audit; alerts that are over (delivered or dead
notifications, resolved problems) are kept in between. ``None`` keeps a class for ever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

log = logging.getLogger("watchkeeper.privacy")


@dataclass(frozen=True)
class RetentionPolicy:
    rows_days: int | None = 90
    aggregates_days: int | None = 730
    alerts_days: int | None = 365


@dataclass
class RetentionResult:
    """What one pass deleted: drop-folder files by path, store rows by table."""

    files: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def apply_retention(root: str | Path, store, policy: RetentionPolicy, today: date) -> RetentionResult:
    """Delete everything past its retention on `today`: row files named for an older day (labels by
    their arrival day), results of older windows, finished alerts created before the cutoff."""
    from watchkeeper.inference_log import INFERENCE, LABELS, SUFFIX, WINDOWS   # pandas: not for `config` readers
    from watchkeeper.store.erasure import delete_alerts_before, delete_ingest_digests_before, delete_results_before

    result = RetentionResult()
    if policy.rows_days is not None:
        cutoff = (today - timedelta(days=policy.rows_days)).isoformat()
        for stream in (INFERENCE, LABELS, WINDOWS):
            for path in sorted(Path(root, stream).glob(f"*/*{SUFFIX}")):
                if path.stem < cutoff:
                    path.unlink()
                    result.files.append(path.relative_to(root).as_posix())
        result.rows |= delete_ingest_digests_before(store.engine, _midnight(today - timedelta(days=policy.rows_days)))
    if policy.aggregates_days is not None:
        result.rows |= delete_results_before(store.engine, (today - timedelta(days=policy.aggregates_days)).isoformat())
    if policy.alerts_days is not None:
        result.rows |= delete_alerts_before(store.engine, _midnight(today - timedelta(days=policy.alerts_days)))
    log.info("retention applied", extra={"event": "retention", "today": today.isoformat(),
                                         "files_deleted": len(result.files), "rows_deleted": result.rows})
    return result


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)
