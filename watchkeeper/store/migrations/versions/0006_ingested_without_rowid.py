"""The dedupe index `ingested` as a WITHOUT ROWID table on SQLite: one B-tree keyed by
(model, kind, prediction_id) instead of a rowid table plus its primary-key index.

Each stored event adds a random key (an id's SHA-256) to the index, so a batch dirties pages all
over it, and every dirty page is written to the WAL and checkpointed at commit: with two B-trees
that write was twice what it needs to be, and it grows with the index (docs/benchmarks.md,
"Stream ingestion at a million events"). PostgreSQL has no rowid tables: nothing to do there.

Revision ID: 0006_ingested_without_rowid
Revises: 0005_ingest
Create Date: 2026-12-04
"""

from alembic import op

revision = "0006_ingested_without_rowid"
down_revision = "0005_ingest"
branch_labels = None
depends_on = None

COLUMNS = "model VARCHAR(200) NOT NULL, kind VARCHAR(12) NOT NULL, prediction_id VARCHAR(200) NOT NULL, " \
          "PRIMARY KEY (model, kind, prediction_id)"


def upgrade() -> None:
    _rebuild("WITHOUT ROWID")


def downgrade() -> None:
    _rebuild("")


def _rebuild(options: str) -> None:
    """Copy the index into a table of the wanted kind (SQLite cannot alter it in place)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE ingested_rebuilt ({COLUMNS}) {options}")
    op.execute("INSERT INTO ingested_rebuilt (model, kind, prediction_id) SELECT model, kind, prediction_id FROM ingested")
    op.execute("DROP TABLE ingested")
    op.execute("ALTER TABLE ingested_rebuilt RENAME TO ingested")
