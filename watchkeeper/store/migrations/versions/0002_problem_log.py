"""One problem log and a record of evaluation failures.

The first release kept two logs of the same problems that could disagree: `alerts` (the first
window of each problem, written by model_health) and `alert_problems` (occurrences,
acknowledgement and resolution, written by the outbox). Both become `problems`, with an
explicit state; every row of either survives as one problem. `failures` records why a model's
window could not be evaluated, per stage.

The first release also stored two things as pickles that this release refuses to unpickle: the
river detector of each model's error stream (now signed) and the PCA drift detector in each
reference (now JSON). Both are cleared here rather than left to fail every window after the
upgrade: a stream's detector restarts fresh at its element count (alarm history kept), and a
reference without a detector skips the joint PCA test until the model is profiled again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMES = {"created_at", "first_seen_at", "acknowledged_at", "resolved_at"}


def _old(name: str, *names: str) -> sa.TableClause:
    """A first-release table as this migration reads it (times typed, so each backend decodes them)."""
    return sa.table(name, *(sa.column(c, sa.DateTime(timezone=True) if c in TIMES else None) for c in names))


OLD_ALERTS = _old("alerts", "fingerprint", "model", "version", "kind", "first_window", "created_at", "payload_json")
OLD_PROBLEMS = _old("alert_problems", "fingerprint", "model", "version", "first_seen_at", "last_window", "occurrence",
                    "acknowledged_at", "resolved_at", "payload_json")


def upgrade() -> None:
    problems = op.create_table(
        "problems",
        sa.Column("fingerprint", sa.String(300), primary_key=True), sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False), sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("state", sa.String(20), nullable=False), sa.Column("first_window", sa.String(10), nullable=False),
        sa.Column("last_window", sa.String(10), nullable=False), sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)), sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("payload_json", sa.Text, nullable=False))
    op.create_index("ix_problems_model", "problems", ["model", "version"])
    op.create_table(
        "failures",
        sa.Column("model", sa.String(200), primary_key=True), sa.Column("window", sa.String(10), primary_key=True),
        sa.Column("stage", sa.String(20), primary_key=True), sa.Column("version", sa.String(50)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False))
    conn = op.get_bind()
    alerts = {r["fingerprint"]: r for r in conn.execute(sa.select(OLD_ALERTS)).mappings()}
    tracked = {r["fingerprint"]: r for r in conn.execute(sa.select(OLD_PROBLEMS)).mappings()}
    rows = [_merged(fingerprint, alerts.get(fingerprint), tracked.get(fingerprint))
            for fingerprint in sorted(alerts.keys() | tracked.keys())]
    if rows:
        op.bulk_insert(problems, rows)
    op.drop_table("alerts")
    op.drop_table("alert_problems")
    _clear_pickles(conn)


def _clear_pickles(conn) -> None:
    """Drop the first release's pickled detector states (see the module docstring)."""
    streams = sa.table("streams", sa.column("model"), sa.column("day"), sa.column("stream"), sa.column("state_json"))
    for row in conn.execute(sa.select(streams)).mappings().all():
        state = {**json.loads(row["state_json"]), "state": ""}
        conn.execute(streams.update().where(streams.c.model == row["model"], streams.c.day == row["day"],
                                            streams.c.stream == row["stream"]).values(state_json=json.dumps(state)))
    profiles = sa.table("profiles", sa.column("model"), sa.column("version"), sa.column("reference_json"))
    for row in conn.execute(sa.select(profiles)).mappings().all():
        reference = json.loads(row["reference_json"])
        if reference.get("pca_detector") is not None:
            reference["pca_detector"] = None
            conn.execute(profiles.update().where(profiles.c.model == row["model"], profiles.c.version == row["version"])
                         .values(reference_json=json.dumps(reference)))


def _merged(fingerprint: str, alert, tracked) -> dict:
    """One problem from the first release's two records of it (either may be missing)."""
    either = tracked or alert
    kind = alert["kind"] if alert else fingerprint.rsplit(":", 1)[-1]
    first_window = alert["first_window"] if alert else tracked["last_window"]
    state = ("resolved" if tracked and tracked["resolved_at"] else
             "acknowledged" if tracked and tracked["acknowledged_at"] else "open")
    return {
        "fingerprint": fingerprint, "model": either["model"], "version": either["version"], "kind": kind,
        "state": state, "first_window": first_window,
        "last_window": tracked["last_window"] if tracked else first_window,
        "occurrence": tracked["occurrence"] if tracked else 1,
        "opened_at": tracked["first_seen_at"] if tracked else alert["created_at"],
        "acknowledged_at": tracked["acknowledged_at"] if tracked else None,
        "resolved_at": tracked["resolved_at"] if tracked else None,
        "payload_json": tracked["payload_json"] if tracked else _record(fingerprint, alert, kind),
    }


def _record(fingerprint: str, alert, kind: str) -> str:
    """An alert record for a problem the first release logged but never notified."""
    reason = json.loads(alert["payload_json"] or "{}")
    return json.dumps({
        "fingerprint": fingerprint, "model": alert["model"], "version": alert["version"],
        "window": alert["first_window"], "severity": "warning", "kind": kind,
        "title": f"{alert['model']} v{alert['version']}: {kind}", "summary": str(reason.get("detail", "")),
        "features": [], "metrics": [], "links": {}, "occurrence": 1})


def downgrade() -> None:
    raise NotImplementedError("the two logs cannot be told apart again: restore the database from a backup")
