"""Deleting stored data: a whole model (erasure), or what has outlived its retention.

The store holds aggregates and alerts, never rows, so erasing one subject touches no table here
(watchkeeper.privacy.erasure rewrites the row files); erasing a model deletes every row that names it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from watchkeeper.store.schema import (
    drift_reports,
    failures,
    health,
    ingest_digests,
    metrics,
    outbox,
    problems,
    profiles,
    quality,
    segment_metrics,
    streams,
    windows,
)

RESULTS = (windows, drift_reports, metrics, segment_metrics, quality, health, streams, failures)
FINISHED = ("delivered", "dead")
RESOLVED = "resolved"


def delete_model(engine: sa.Engine, model: str) -> dict[str, int]:
    """Every stored row of `model` (results, references, problems and their outbox rows), in one
    transaction; returns how many rows each table lost."""
    deleted = {}
    with engine.begin() as conn:
        fingerprints = sa.select(problems.c.fingerprint).where(problems.c.model == model)
        deleted["outbox"] = conn.execute(outbox.delete().where(outbox.c.fingerprint.in_(fingerprints))).rowcount
        for table in (*RESULTS, profiles, problems):
            deleted[table.name] = conn.execute(table.delete().where(table.c.model == model)).rowcount
    return deleted


def delete_results_before(engine: sa.Engine, day: str) -> dict[str, int]:
    """Result rows (aggregates) of windows before `day` (YYYY-MM-DD)."""
    with engine.begin() as conn:
        return {t.name: conn.execute(t.delete().where(_day(t) < day)).rowcount for t in RESULTS}


def delete_alerts_before(engine: sa.Engine, at: datetime) -> dict[str, int]:
    """Alerts that are over (delivered or dead outbox rows, resolved problems) and older than `at`."""
    with engine.begin() as conn:
        sent = outbox.delete().where(outbox.c.status.in_(FINISHED), outbox.c.created_at < at)
        closed = problems.delete().where(problems.c.state == RESOLVED, problems.c.resolved_at < at)
        return {"outbox": conn.execute(sent).rowcount, "problems": conn.execute(closed).rowcount}


def delete_ingest_digests_before(engine: sa.Engine, at: datetime) -> dict[str, int]:
    """The stream dedupe index's rows committed before `at`: the events they stand for are past the
    rows' retention, and consumers load the index into memory, which this keeps bounded."""
    with engine.begin() as conn:
        return {"ingest_digests": conn.execute(ingest_digests.delete().where(ingest_digests.c.committed_at < at)).rowcount}


def _day(table: sa.Table) -> sa.Column:
    return table.c["day"] if "day" in table.c else table.c["window"]
