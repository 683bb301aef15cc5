"""The schema of the first release (2026-11), which made its tables with `create_all`.

A database from that release has no alembic_version table; watchkeeper.store.migrate stamps it
with this revision, then upgrades it. Frozen: it describes what was released, not the code.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _keyed(name: str, *columns: sa.Column, day: str = "window") -> None:
    """A result table keyed by (model, window or day)."""
    op.create_table(name, sa.Column("model", sa.String(200), primary_key=True),
                    sa.Column(day, sa.String(10), primary_key=True), *columns)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("model", sa.String(200), primary_key=True), sa.Column("version", sa.String(50), primary_key=True),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile_json", sa.Text, nullable=False), sa.Column("reference_json", sa.Text, nullable=False))
    _keyed("windows", sa.Column("version", sa.String(50)), sa.Column("n_rows", sa.Integer, nullable=False),
           sa.Column("problems_json", sa.Text, nullable=False), sa.Column("path", sa.Text))
    _keyed("drift_reports", sa.Column("version", sa.String(50), nullable=False),
           sa.Column("dataset_drift", sa.Boolean, nullable=False), sa.Column("n_current", sa.Integer, nullable=False),
           sa.Column("report_json", sa.Text, nullable=False))
    _keyed("metrics", sa.Column("metric", sa.String(50), primary_key=True),
           sa.Column("version", sa.String(50), nullable=False), sa.Column("value", sa.Float),
           sa.Column("lower", sa.Float), sa.Column("upper", sa.Float),
           sa.Column("n_labelled", sa.Integer, nullable=False), sa.Column("n_predictions", sa.Integer, nullable=False))
    _keyed("segment_metrics", sa.Column("version", sa.String(50), nullable=False),
           sa.Column("segments_json", sa.Text, nullable=False))
    _keyed("quality", sa.Column("version", sa.String(50), nullable=False),
           sa.Column("status", sa.String(10), nullable=False), sa.Column("result_json", sa.Text, nullable=False))
    _keyed("health", sa.Column("version", sa.String(50), nullable=False),
           sa.Column("status", sa.String(20), nullable=False), sa.Column("reasons_json", sa.Text, nullable=False))
    _keyed("streams", sa.Column("stream", sa.String(30), primary_key=True),
           sa.Column("version", sa.String(50), nullable=False), sa.Column("n_values", sa.Integer, nullable=False),
           sa.Column("state_json", sa.Text, nullable=False), sa.Column("alarms_json", sa.Text, nullable=False),
           day="day")
    op.create_table(
        "alerts",
        sa.Column("fingerprint", sa.String(300), primary_key=True), sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False), sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("first_window", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_json", sa.Text, nullable=False))
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(300), nullable=False), sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False), sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False), sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(32)), sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text), sa.Column("external_id", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("fingerprint", "channel", "occurrence", name="uq_outbox_delivery"))
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "alert_problems",
        sa.Column("fingerprint", sa.String(300), primary_key=True), sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_window", sa.String(10), nullable=False), sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)), sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("payload_json", sa.Text, nullable=False))
    op.create_table(
        "outbox_channel_pauses",
        sa.Column("channel", sa.String(100), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    for name in ("outbox_channel_pauses", "alert_problems", "outbox", "alerts", "streams", "health", "quality",
                 "segment_metrics", "metrics", "drift_reports", "windows", "profiles"):
        op.drop_table(name)
