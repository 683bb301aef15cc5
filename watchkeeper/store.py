"""The monitoring store: one table per result kind, keyed by model and window.

Every writer replaces the rows of its (model, window) key in one transaction, so
re-materialising a partition replaces its results and never duplicates them. The same
code runs on the embedded SQLite file and on PostgreSQL (any SQLAlchemy URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

profiles = sa.Table(
    "profiles", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(50), primary_key=True),
    sa.Column("task", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("profile_json", sa.Text, nullable=False),
    sa.Column("reference_json", sa.Text, nullable=False),
)

windows = sa.Table(
    "windows", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("version", sa.String(50)),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("problems_json", sa.Text, nullable=False),
    sa.Column("path", sa.Text),
)

drift_reports = sa.Table(
    "drift_reports", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("dataset_drift", sa.Boolean, nullable=False),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
)

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("metric", sa.String(50), primary_key=True),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("lower", sa.Float),
    sa.Column("upper", sa.Float),
    sa.Column("n_labelled", sa.Integer, nullable=False),
    sa.Column("n_predictions", sa.Integer, nullable=False),
)

segment_metrics = sa.Table(
    "segment_metrics", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("segments_json", sa.Text, nullable=False),   # [{segment, metric, value, lower, upper}]
)

quality = sa.Table(
    "quality", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),     # passed | warning | failed
    sa.Column("result_json", sa.Text, nullable=False),      # QualityResult.to_dict()
)

health = sa.Table(
    "health", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("window", sa.String(10), primary_key=True),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reasons_json", sa.Text, nullable=False),
)

streams = sa.Table(
    "streams", metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("stream", sa.String(30), primary_key=True),   # "errors" | "predictions"
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("n_values", sa.Integer, nullable=False),
    sa.Column("state_json", sa.Text, nullable=False),
    sa.Column("alarms_json", sa.Text, nullable=False),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("fingerprint", sa.String(300), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("first_window", sa.String(10), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload_json", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class StoredProfile:
    model: str
    version: str
    task: str
    profile: dict[str, Any]
    reference: dict[str, Any]   # {"metrics": {name: MetricValue dict}, "classes": [...], "features": [...]}


class MonitoringStore:
    """Results of every evaluation, queryable per model and window."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        metadata.create_all(self.engine)

    def _replace(self, table: sa.Table, key: Mapping[str, str], rows: Iterable[dict]) -> None:
        """Delete the rows of `key` and insert `rows`, atomically: reruns are idempotent."""
        rows = [{**key, **row} for row in rows]
        where = sa.and_(*(table.c[name] == value for name, value in key.items()))
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(where))
            if rows:
                conn.execute(table.insert(), rows)

    def put_profile(self, model: str, version: str, task: str, profile: dict, reference: dict) -> None:
        row = {"task": task, "created_at": _now(), "profile_json": json.dumps(profile),
               "reference_json": json.dumps(reference)}
        self._replace(profiles, {"model": model, "version": version}, [row])

    def latest_profiles(self) -> dict[str, StoredProfile]:
        """The newest profile of every model, i.e. the one of its current champion."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(profiles).order_by(profiles.c.created_at)).mappings().all()
        return {r["model"]: StoredProfile(r["model"], r["version"], r["task"], json.loads(r["profile_json"]),
                                          json.loads(r["reference_json"])) for r in rows}

    def put_window(self, model: str, window: str, version: str, n_rows: int, problems: list[str], path: str | None) -> None:
        row = {"version": version, "n_rows": n_rows, "problems_json": json.dumps(problems), "path": path}
        self._replace(windows, {"model": model, "window": window}, [row])

    def put_quality(self, model: str, window: str, version: str, status: str, result: dict) -> None:
        self._replace(quality, {"model": model, "window": window},
                      [{"version": version, "status": status, "result_json": json.dumps(result)}])

    def delete_drift(self, model: str, window: str) -> None:
        """Withdraw a window's drift report (its data no longer passes data quality)."""
        self._replace(drift_reports, {"model": model, "window": window}, [])

    def put_drift(self, model: str, window: str, version: str, report: dict) -> None:
        row = {"version": version, "dataset_drift": bool(report["dataset_drift"]),
               "n_current": int(report["n_current"]), "report_json": json.dumps(report)}
        self._replace(drift_reports, {"model": model, "window": window}, [row])

    def put_metrics(self, model: str, window: str, version: str, values: list[dict], n_labelled: int, n_predictions: int) -> None:
        rows = [{"version": version, "metric": v["name"], "value": v["value"], "lower": v["lower"],
                 "upper": v["upper"], "n_labelled": n_labelled, "n_predictions": n_predictions} for v in values]
        self._replace(metrics, {"model": model, "window": window}, rows)

    def put_segments(self, model: str, window: str, version: str, segments: list[dict]) -> None:
        self._replace(segment_metrics, {"model": model, "window": window},
                      [{"version": version, "segments_json": json.dumps(segments)}])

    def put_health(self, model: str, window: str, version: str, status: str, reasons: list[dict]) -> None:
        row = {"version": version, "status": status, "reasons_json": json.dumps(reasons)}
        self._replace(health, {"model": model, "window": window}, [row])

    def put_stream(self, model: str, day: str, stream: str, version: str, n_values: int, state: dict,
                   alarms: list[dict]) -> None:
        row = {"version": version, "n_values": n_values, "state_json": json.dumps(state), "alarms_json": json.dumps(alarms)}
        self._replace(streams, {"model": model, "day": day, "stream": stream}, [row])

    def stream_state(self, model: str, stream: str, version: str, before: str) -> dict | None:
        """The detector state left by the model version's last day before `before`: resume from it."""
        query = (sa.select(streams.c.state_json)
                 .where(streams.c.model == model, streams.c.stream == stream, streams.c.version == version,
                        streams.c.day < before)
                 .order_by(streams.c.day.desc()).limit(1))
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return json.loads(found) if found else None

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

    def open_alert(self, fingerprint: str, model: str, version: str, kind: str, window: str, payload: dict) -> bool:
        """Record an alert once per fingerprint; returns False when it was already open."""
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(alerts.c.fingerprint).where(alerts.c.fingerprint == fingerprint)).first()
            if exists:
                return False
            conn.execute(alerts.insert(), [{"fingerprint": fingerprint, "model": model, "version": version, "kind": kind,
                                            "first_window": window, "created_at": _now(),
                                            "payload_json": json.dumps(payload)}])
        return True

    def rows(self, table: sa.Table, model: str | None = None, window: str | None = None,
             since: str | None = None, before: str | None = None) -> list[dict]:
        """Rows of a result table, oldest window first, JSON columns decoded; `since` (inclusive)
        and `before` (exclusive) bound the windows, so a long history is not read to use a part."""
        query = sa.select(table)
        if model is not None:
            query = query.where(table.c.model == model)
        if window is not None:
            query = query.where(table.c.window == window)
        if since is not None:
            query = query.where(table.c.window >= since)
        if before is not None:
            query = query.where(table.c.window < before)
        order = [table.c.model] + [table.c[c] for c in ("window", "day") if c in table.c]
        with self.engine.connect() as conn:
            result = conn.execute(query.order_by(*order)).mappings().all()
        return [_decode(dict(r)) for r in result]


def _decode(row: dict) -> dict:
    for name in [n for n in row if n.endswith("_json")]:
        row[name[: -len("_json")]] = json.loads(row.pop(name))
    return row


def _now() -> datetime:
    return datetime.now(timezone.utc)
