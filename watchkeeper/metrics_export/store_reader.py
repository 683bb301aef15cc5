"""The store's newest results per model, read with one query per table.

A scrape must cost the same for a model with a week of windows and one with years of
them, so every query joins its table with the newest window of each model and returns
only those rows: the cost grows with models x features, never with history, and never
with one query per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec
import sqlalchemy as sa

from watchkeeper.store import drift_reports, health, metrics
from watchkeeper.store.schema import outbox, problems



class FeatureDrift(msgspec.Struct, frozen=True):
    """The part of a drift report's feature entry that is exported (the rest is skipped unread)."""

    name: str
    effect_size: float | None
    drifted: bool


class _Report(msgspec.Struct):
    features: list[FeatureDrift]


# A 50-feature report is about 50 KB, mostly histograms; decoding only these fields is
# about eight times cheaper than json.loads, which is most of a 1,000-model scrape.
_DECODER = msgspec.json.Decoder(_Report)


@dataclass(frozen=True)
class DriftRow:
    model: str
    window: str
    version: str
    dataset_drift: bool
    features: list[FeatureDrift]


@dataclass(frozen=True)
class StoreSnapshot:
    """Newest window of every model in each result table, plus alert counts."""

    health: list[dict]                     # model, window, version, status
    metrics: list[dict]                    # model, window, version, metric, value, lower, upper, n_labelled,
                                           # n_predictions
    drift: list[DriftRow]
    alerts: list[tuple[str, str, int]]     # (model, kind, alerts raised)
    alert_states: dict[str, int]           # outbox notifications by delivery status


def read_snapshot(engine: sa.Engine) -> StoreSnapshot:
    """Read everything a scrape needs in one connection, a handful of queries in total."""
    with engine.connect() as conn:
        health_rows = _newest(conn, health, ["model", "window", "version", "status"])
        metric_rows = _newest(conn, metrics, ["model", "window", "version", "metric", "value", "lower", "upper",
                                              "n_labelled", "n_predictions"])
        drift_rows = [_drift_row(r) for r in _newest(conn, drift_reports, ["model", "window", "version",
                                                                            "dataset_drift", "report_json"])]
        alert_rows = [tuple(r) for r in conn.execute(
            sa.select(problems.c.model, problems.c.kind, sa.func.count()).group_by(problems.c.model, problems.c.kind))]
        states = _alert_states(conn)
    return StoreSnapshot(health_rows, metric_rows, drift_rows, alert_rows, states)


def _newest(conn: sa.Connection, table: sa.Table, columns: list[str]) -> list[dict]:
    """Rows of `table` in the newest window of each model (by the window's ISO date)."""
    newest = (sa.select(table.c.model, sa.func.max(table.c.window).label("window"))
              .group_by(table.c.model).subquery())
    query = (sa.select(*(table.c[name] for name in columns))
             .join(newest, sa.and_(table.c.model == newest.c.model, table.c.window == newest.c.window)))
    return [dict(row) for row in conn.execute(query).mappings()]


def _drift_row(row: dict) -> DriftRow:
    text = row["report_json"]
    try:
        try:
            report = _DECODER.decode(text)
        except msgspec.DecodeError:   # NaN or Infinity: json.dumps writes them, strict JSON does not have them
            report = msgspec.convert(json.loads(text), _Report)
    except (msgspec.ValidationError, ValueError) as error:
        raise ValueError(f"drift report of {row['model']} {row['window']}: {error}") from None
    return DriftRow(row["model"], row["window"], row["version"], bool(row["dataset_drift"]), report.features)


def _alert_states(conn: sa.Connection) -> dict[str, int]:
    """Outbox notifications by delivery status (pending, delivered, dead)."""
    return dict(conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all())
