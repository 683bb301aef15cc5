"""The newest window of every model, read with one query per table (what a scrape needs).

A scrape must cost the same for a model with a week of windows and one with years of them, so
every query joins its table with the newest window of each model and returns only those rows:
the cost grows with models x features, never with history, and never with one query per model.
It only reads: an exporter may point at a store it must not migrate.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from watchkeeper.store.schema import drift_reports, health, metrics, outbox, problems


@dataclass(frozen=True)
class NewestResults:
    health: list[dict]                     # model, window, version, status
    metrics: list[dict]                    # model, window, version, metric, value, lower, upper, n_labelled,
                                           # n_predictions
    drift: list[dict]                      # model, window, version, dataset_drift, report_json (undecoded text)
    alerts: list[tuple[str, str, int]]     # (model, kind, problems raised)
    alert_states: dict[str, int]           # outbox notifications by delivery status


def read_newest(engine: sa.Engine) -> NewestResults:
    """Everything in one connection, a handful of queries in total."""
    with engine.connect() as conn:
        health_rows = _newest(conn, health, ["model", "window", "version", "status"])
        metric_rows = _newest(conn, metrics, ["model", "window", "version", "metric", "value", "lower", "upper",
                                              "n_labelled", "n_predictions"])
        drift_rows = _newest(conn, drift_reports, ["model", "window", "version", "dataset_drift", "report_json"])
        alert_rows = [tuple(r) for r in conn.execute(
            sa.select(problems.c.model, problems.c.kind, sa.func.count()).group_by(problems.c.model, problems.c.kind))]
        states = dict(conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all())
    return NewestResults(health_rows, metric_rows, drift_rows, alert_rows, states)


def _newest(conn: sa.Connection, table: sa.Table, columns: list[str]) -> list[dict]:
    """Rows of `table` in the newest window of each model (by the window's ISO date)."""
    newest = (sa.select(table.c.model, sa.func.max(table.c.window).label("window"))
              .group_by(table.c.model).subquery())
    query = (sa.select(*(table.c[name] for name in columns))
             .join(newest, sa.and_(table.c.model == newest.c.model, table.c.window == newest.c.window)))
    return [dict(row) for row in conn.execute(query).mappings()]
