"""Stream ingestion: the dedupe index, committed parts, dead letters; who fed a detector's day.

`ingested` keys every stored event by (model, kind, prediction_id), so a redelivered event is
stored once; `ingest_parts` names each batch's Parquet part, committed with its ids (a part whose
rename a crash interrupted is rolled forward from it); `dead_letters` keeps malformed events with
their reason, once per stream message. `streams.source` says whether a detector's day was fed
live by `watchkeeper ingest` (the daily evaluation then keeps it) or by the daily evaluation.

Revision ID: 0005_ingest
Revises: 0004_incidents
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_ingest"
down_revision = "0004_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested",
        sa.Column("model", sa.String(200), primary_key=True), sa.Column("kind", sa.String(12), primary_key=True),
        sa.Column("prediction_id", sa.String(200), primary_key=True))
    op.create_table(
        "ingest_parts",
        sa.Column("path", sa.String(500), primary_key=True), sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(300), nullable=False), sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False), sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "message_id", name="uq_dead_letter_message"))
    with op.batch_alter_table("streams") as batch:
        batch.add_column(sa.Column("source", sa.String(10), nullable=False, server_default="daily"))


def downgrade() -> None:
    with op.batch_alter_table("streams") as batch:
        batch.drop_column("source")
    for table in ("dead_letters", "ingest_parts", "ingested"):
        op.drop_table(table)
