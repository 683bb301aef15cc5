"""The monitoring store: results keyed by model and window, the problem log, the outbox's rows and
the audit trail.

Every writer replaces the rows of its (model, window) key, so re-materialising a partition
replaces its results and never duplicates them. Each writer runs in its own transaction, or in
the caller's when given `tx` (from `store.transaction()`): a model-window's verdict, its
problem-log entries and its outbox rows commit together or not at all. The same code runs on
the embedded SQLite file and on PostgreSQL (any SQLAlchemy URL); the schema is migrated with
Alembic (watchkeeper/store/migrate.py) when the store is opened.

Verdicts are the exception to replacing: `health` holds each window's current verdict, and
`verdict_versions` every verdict the window was ever given, with what it was computed from. The
audit trail is only ever appended to (`audit`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

import sqlalchemy as sa

from watchkeeper.security.envelope import EncryptionError
from watchkeeper.security import residency
from watchkeeper.security.audit import AuditEntry, Broken, default_actor, now
from watchkeeper.store.audit_rows import AuditRows, verify_trail
from watchkeeper.store.migrate import ensure_current
from watchkeeper.store.ingest_rows import IngestRows
from watchkeeper.store.outbox import Outbox
from watchkeeper.store.problem_rows import ProblemRows
from watchkeeper.store.records import (
    StoredAlert,
    StoredDrift,
    StoredFailure,
    StoredMetric,
    StoredProblem,
    StoredProfile,
    StoredQuality,
    StoredSegments,
    StoredStream,
    StoredVerdict,
    StoredVerdictVersion,
    StoredWindow,
    decoded,
)
from watchkeeper.store.sealed import loaded_json, stored_json
from watchkeeper.store.schema import (
    drift_reports,
    failures,
    health,
    metrics,
    profiles,
    quality,
    segment_metrics,
    streams,
    verdict_versions,
    windows,
)

__all__ = ["IngestRows", "MonitoringStore", "Outbox", "ProblemRows", "StoredAlert", "StoredDrift", "StoredFailure",
           "StoredMetric", "StoredProblem", "StoredProfile", "StoredQuality", "StoredSegments", "StoredStream",
           "StoredVerdict", "StoredVerdictVersion", "StoredWindow"]

Record = TypeVar("Record")


class MonitoringStore:
    """Results of every evaluation, queryable per model and window."""

    def __init__(self, url: str | sa.Engine) -> None:
        residency.check(residency.AGGREGATES, "the monitoring store",
                        url if isinstance(url, str) else url.url.render_as_string())
        self.engine = sa.create_engine(url) if isinstance(url, str) else url
        _use_wal(self.engine)
        ensure_current(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction for several writes: pass it as `tx=` to each of them."""
        with self.engine.begin() as tx:
            yield tx

    @contextmanager
    def writing(self, tx: sa.Connection | None) -> Iterator[sa.Connection]:
        if tx is not None:
            yield tx
        else:
            with self.engine.begin() as conn:
                yield conn

    def _replace(self, table: sa.Table, key: Mapping[str, str], rows: Iterable[dict],
                 tx: sa.Connection | None = None) -> None:
        """Delete the rows of `key` and insert `rows`, atomically: reruns are idempotent."""
        rows = [{**key, **row} for row in rows]
        where = sa.and_(*(table.c[name] == value for name, value in key.items()))
        with self.writing(tx) as conn:
            conn.execute(table.delete().where(where))
            if rows:
                conn.execute(table.insert(), rows)

    def put_profile(self, model: str, version: str, task: str, profile: dict, reference: dict) -> None:
        row = {"task": task, "created_at": _now(), "profile_json": stored_json("profile_json", profile),
               "reference_json": stored_json("reference_json", reference)}
        self._replace(profiles, {"model": model, "version": version}, [row])

    def latest_profiles(self, wanted: Callable[[str], bool] | None = None) -> dict[str, StoredProfile]:
        """The newest profile of every model (of those `wanted` accepts), i.e. its current champion's.

        Which version is newest is read first without the profiles themselves; only the newest of
        each wanted model is then fetched and decoded (1.6 ms a model): a shard of a large fleet
        no longer decodes every model, nor every model's older versions."""
        with self.engine.connect() as conn:
            versions = conn.execute(sa.select(profiles.c.model, profiles.c.version)
                                    .order_by(profiles.c.created_at)).all()
            newest = {model: version for model, version in versions if wanted is None or wanted(model)}
            if not newest:
                return {}
            key = sa.tuple_(profiles.c.model, profiles.c.version)
            rows = conn.execute(sa.select(profiles).where(key.in_(list(newest.items())))).mappings().all()
        found = {r["model"]: _stored_profile(r) for r in rows}
        return {model: found[model] for model in newest}

    def put_window(self, model: str, window: str, version: str, n_rows: int, problems: list[str], path: str | None,
                   tx: sa.Connection | None = None) -> None:
        row = {"version": version, "n_rows": n_rows, "problems_json": json.dumps(problems), "path": path}
        self._replace(windows, {"model": model, "window": window}, [row], tx)

    def put_quality(self, model: str, window: str, version: str, status: str, result: dict,
                    tx: sa.Connection | None = None) -> None:
        self._replace(quality, {"model": model, "window": window},
                      [{"version": version, "status": status, "result_json": json.dumps(result)}], tx)

    def delete_drift(self, model: str, window: str, tx: sa.Connection | None = None) -> None:
        """Withdraw a window's drift report (its data no longer passes data quality)."""
        self._replace(drift_reports, {"model": model, "window": window}, [], tx)

    def put_drift(self, model: str, window: str, version: str, report: dict, tx: sa.Connection | None = None) -> None:
        row = {"version": version, "dataset_drift": bool(report["dataset_drift"]),
               "n_current": int(report["n_current"]), "report_json": json.dumps(report)}
        self._replace(drift_reports, {"model": model, "window": window}, [row], tx)

    def put_metrics(self, model: str, window: str, version: str, values: list[dict], n_labelled: int,
                    n_predictions: int, tx: sa.Connection | None = None) -> None:
        rows = [{"version": version, "metric": v["name"], "value": v["value"], "lower": v["lower"],
                 "upper": v["upper"], "n_labelled": n_labelled, "n_predictions": n_predictions} for v in values]
        self._replace(metrics, {"model": model, "window": window}, rows, tx)

    def put_segments(self, model: str, window: str, version: str, segments: list[dict],
                     tx: sa.Connection | None = None) -> None:
        self._replace(segment_metrics, {"model": model, "window": window},
                      [{"version": version, "segments_json": json.dumps(segments)}], tx)

    def put_health(self, model: str, window: str, version: str, status: str, reasons: list[dict],
                   tx: sa.Connection | None = None, lineage: Mapping[str, Any] | None = None,
                   run_id: str | None = None) -> int:
        """Make this the window's current verdict and keep it as its next version (the earlier ones
        stay readable through `verdict_versions`); returns the version's revision number."""
        row = {"version": version, "status": status, "reasons_json": json.dumps(reasons)}
        v = verdict_versions.c
        with self.writing(tx) as conn:
            self._replace(health, {"model": model, "window": window}, [row], conn)
            revision = sa.select(sa.func.coalesce(sa.func.max(v.revision), 0) + 1).where(
                v.model == model, v.window == window).scalar_subquery()
            conn.execute(verdict_versions.insert().values(
                model=model, window=window, revision=revision, lineage_json=json.dumps(dict(lineage or {})),
                run_id=run_id, decided_at=_now(), **row))
            return conn.execute(sa.select(sa.func.max(v.revision)).where(v.model == model, v.window == window)).scalar()

    def verdict_versions(self, model: str, window: str) -> list[StoredVerdictVersion]:
        """Every verdict the model's window was given, oldest first (the last one is current)."""
        query = (sa.select(verdict_versions).where(verdict_versions.c.model == model,
                                                   verdict_versions.c.window == window)
                 .order_by(verdict_versions.c.revision))
        with self.engine.connect() as conn:
            return [StoredVerdictVersion(**decoded(row)) for row in conn.execute(query).mappings()]

    def put_stream(self, model: str, day: str, stream: str, version: str, n_values: int, state: dict,
                   alarms: list[dict], tx: sa.Connection | None = None, source: str = "daily") -> None:
        row = {"version": version, "n_values": n_values, "state_json": stored_json("state_json", state),
               "alarms_json": json.dumps(alarms), "source": source}
        self._replace(streams, {"model": model, "day": day, "stream": stream}, [row], tx)

    def put_failure(self, model: str, window: str, stage: str, version: str | None, reason: str,
                    tx: sa.Connection | None = None) -> None:
        """Record why a stage could not evaluate a model's window (replacing an earlier reason)."""
        row = {"version": version, "reason": reason, "failed_at": _now()}
        self._replace(failures, {"model": model, "window": window, "stage": stage}, [row], tx)

    def clear_failure(self, model: str, window: str, stage: str, tx: sa.Connection | None = None) -> None:
        """The stage succeeded for the window: whatever failed before no longer stands."""
        self._replace(failures, {"model": model, "window": window, "stage": stage}, [], tx)

    def stream_state(self, model: str, stream: str, version: str, before: str,
                     tx: sa.Connection | None = None) -> dict | None:
        """The detector state left by the model version's last day before `before`: resume from it."""
        query = (sa.select(streams.c.state_json)
                 .where(streams.c.model == model, streams.c.stream == stream, streams.c.version == version,
                        streams.c.day < before)
                 .order_by(streams.c.day.desc()).limit(1))
        with self.writing(tx) as conn:
            found = conn.execute(query).scalar()
        return loaded_json("state_json", found) if found else None

    def stream_day(self, model: str, stream: str, day: str, tx: sa.Connection | None = None) -> StoredStream | None:
        """A detector's stored day (state, alarms, who fed it), or None."""
        query = sa.select(streams).where(streams.c.model == model, streams.c.stream == stream, streams.c.day == day)
        with self.writing(tx) as conn:
            found = conn.execute(query).mappings().first()
        return StoredStream(**decoded(found)) if found is not None else None

    def stream_alarms(self, model: str, stream: str, day: str) -> list[dict]:
        """The alarms a model's stream detector raised on one day (without loading its state)."""
        query = sa.select(streams.c.alarms_json).where(streams.c.model == model, streams.c.stream == stream,
                                                       streams.c.day == day)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return json.loads(found) if found else []

    def latest_window(self, model: str) -> str | None:
        """The newest window with a verdict for `model`."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(health.c.window)).where(health.c.model == model)).scalar()

    # ------------------------------------------------------------ reading results

    def windows(self, model: str | None = None, window: str | None = None, since: str | None = None,
                before: str | None = None) -> list[StoredWindow]:
        """Kept production windows; every reader takes the same filters (see `_read`)."""
        return self._read(windows, StoredWindow, model, window, since, before)

    def quality(self, model: str | None = None, window: str | None = None, since: str | None = None,
                before: str | None = None) -> list[StoredQuality]:
        return self._read(quality, StoredQuality, model, window, since, before)

    def drift(self, model: str | None = None, window: str | None = None, since: str | None = None,
              before: str | None = None) -> list[StoredDrift]:
        return self._read(drift_reports, StoredDrift, model, window, since, before)

    def metrics(self, model: str | None = None, window: str | None = None, since: str | None = None,
                before: str | None = None) -> list[StoredMetric]:
        return self._read(metrics, StoredMetric, model, window, since, before)

    def segments(self, model: str | None = None, window: str | None = None, since: str | None = None,
                 before: str | None = None) -> list[StoredSegments]:
        return self._read(segment_metrics, StoredSegments, model, window, since, before)

    def verdicts(self, model: str | None = None, window: str | None = None, since: str | None = None,
                 before: str | None = None) -> list[StoredVerdict]:
        return self._read(health, StoredVerdict, model, window, since, before)

    def streams(self, model: str | None = None, window: str | None = None, since: str | None = None,
                before: str | None = None) -> list[StoredStream]:
        """Concept-drift detector days (`window` and the bounds filter their `day`)."""
        return self._read(streams, StoredStream, model, window, since, before)

    def failures(self, model: str | None = None, window: str | None = None, since: str | None = None,
                 before: str | None = None) -> list[StoredFailure]:
        return self._read(failures, StoredFailure, model, window, since, before)

    def _read(self, table: sa.Table, record: Callable[..., Record], model: str | None, window: str | None,
              since: str | None, before: str | None) -> list[Record]:
        """Rows of a result table as records, by model then oldest window first; `since`
        (inclusive) and `before` (exclusive) bound the windows, so a long history is not read to
        use a part of it."""
        day = table.c["day"] if "day" in table.c else table.c["window"]
        query = sa.select(table)
        for column, value in ((table.c.model, model), (day, window)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(day >= since)
        if before is not None:
            query = query.where(day < before)
        with self.engine.connect() as conn:
            found = conn.execute(query.order_by(table.c.model, day, *table.primary_key.columns)).mappings().all()
        return [record(**decoded(row)) for row in found]

    # ------------------------------------------------------------ the problem log and the outbox

    @property
    def problem_rows(self) -> ProblemRows:
        """The problem log's rows (watchkeeper.problems owns their lifecycle)."""
        return ProblemRows(self.engine)

    @property
    def ingest_rows(self) -> IngestRows:
        """The stream ingestion's dedupe index, committed parts and dead letters."""
        return IngestRows(self.engine)

    def window_alerts(self, model: str | None = None, window: str | None = None) -> list[StoredAlert]:
        """The alerts each window's verdict raised, as raised (full record): what a window shows
        even after a later re-materialisation queued nothing new."""
        with self.engine.connect() as conn:
            return self.problem_rows.window_alerts(conn, model, window)

    def outbox(self, clock: Callable[[], float] = time.time) -> Outbox:
        """The alert outbox on this store's database."""
        return Outbox(self.engine, clock=clock)

    # ------------------------------------------------------------ the audit trail

    def audit(self, action: str, subject: str, actor: str | None = None, run_id: str | None = None,
              partition: str | None = None, details: Mapping[str, Any] | None = None,
              tx: sa.Connection | None = None) -> AuditEntry:
        """Append one entry to the audit trail, in `tx` when given (then it is in the trail exactly
        when the rest of that transaction is); returns it sealed. `actor` defaults to
        watchkeeper.security.audit.default_actor(). Details must be JSON data, never a secret."""
        entry = AuditEntry(0, now(), actor or default_actor(), action, subject, run_id, partition, dict(details or {}))
        with self.writing(tx) as conn:
            return AuditRows(self.engine).append(conn, entry)

    def audit_if_changed(self, action: str, subject: str, details: Mapping[str, Any], key: str = "digest",
                         actor: str | None = None, run_id: str | None = None) -> AuditEntry | None:
        """Append an entry only when `details[key]` differs from the newest entry of the same action
        and subject (e.g. a configuration digest); returns it, or None when nothing changed."""
        entry = AuditEntry(0, now(), actor or default_actor(), action, subject, run_id, None, dict(details))
        with self.engine.begin() as conn:
            return AuditRows(self.engine).append_if_changed(conn, entry, key)

    def audit_entries(self, action: str | None = None) -> Iterator[AuditEntry]:
        """The audit trail (entries of one action), oldest first."""
        return AuditRows(self.engine).entries(action)

    def verify_audit(self) -> tuple[int, Broken | None, str | None]:
        """(entries read, the first bad entry or None, the hash of the newest entry)."""
        return verify_trail(self.engine)


def _stored_profile(row: Mapping[str, Any]) -> StoredProfile:
    """One model's stored reference; a row that is not JSON is kept with the reason, so that model
    fails alone (watchkeeper.reference refuses it) instead of every model's evaluation."""
    try:
        return StoredProfile(row["model"], row["version"], row["task"], loaded_json("profile_json", row["profile_json"]),
                             loaded_json("reference_json", row["reference_json"]))
    except EncryptionError as error:
        return StoredProfile(row["model"], row["version"], row["task"], {}, {}, error=str(error))
    except (TypeError, ValueError) as error:
        return StoredProfile(row["model"], row["version"], row["task"], {}, {},
                             error=f"the stored reference is not JSON ({' '.join(str(error).split())[:200]})")


def _use_wal(engine: sa.Engine) -> None:
    """On a SQLite file, switch to write-ahead logging (a persistent property of the file).

    Evaluation runs write the store while the sender and the exporter read it; with WAL readers
    never block the writer, and a commit costs one fsync instead of three (about 5 ms instead of
    18 ms on this machine's disk). Durability is unchanged (synchronous stays FULL).
    """
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")


def _now() -> datetime:
    return datetime.now(timezone.utc)
