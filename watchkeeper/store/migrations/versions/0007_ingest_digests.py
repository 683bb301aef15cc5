"""The stream dedupe index as an append-only table: one row per batch, model and kind holding the
SHA-256 digests of the ids it stored (`ingest_digests`), instead of one row per id (`ingested`).

A B-tree keyed by random digests dirtied pages all over itself at every commit, and the cost grew
with its size (docs/benchmarks.md, "Stream ingestion at a million events"); appending a batch's
digests is one sequential write, and consumers check ids against the digests in memory
(watchkeeper.store.digest_set). The digests are the same SHA-256s `ingested` held (as hex):
upgrading carries every one over, downgrading writes them back, so either way no stored event is
taken for new. Each row records when it was committed, so retention can drop the digests of events
whose rows it has deleted, and the index a consumer holds in memory stays bounded.

Revision ID: 0007_ingest_digests
Revises: 0006_ingested_without_rowid
Create Date: 2026-12-04
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0007_ingest_digests"
down_revision = "0006_ingested_without_rowid"
branch_labels = None
depends_on = None

DIGEST_BYTES = 32
ROW_DIGESTS = 100_000     # digests per row when carrying an old index over (a few MB each)
OLD_COLUMNS = "model VARCHAR(200) NOT NULL, kind VARCHAR(12) NOT NULL, prediction_id VARCHAR(200) NOT NULL, " \
              "PRIMARY KEY (model, kind, prediction_id)"


def upgrade() -> None:
    digests = op.create_table(
        "ingest_digests",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False), sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("digests", sa.LargeBinary, nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False))   # carried-over rows: the upgrade's time
    op.create_index("ix_ingest_digests_model", "ingest_digests", ["model", "kind", "seq"])
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    old = sa.table("ingested", sa.column("model"), sa.column("kind"), sa.column("prediction_id"))
    for model, kind in bind.execute(sa.select(old.c.model, old.c.kind).distinct()).all():
        hexes = bind.execute(sa.select(old.c.prediction_id).where(old.c.model == model, old.c.kind == kind)).scalars().all()
        batch: list[bytes] = []
        for hexed in hexes:
            batch.append(bytes.fromhex(hexed))
            if len(batch) == ROW_DIGESTS:
                bind.execute(digests.insert().values(model=model, kind=kind, digests=b"".join(batch), committed_at=now))
                batch = []
        if batch:
            bind.execute(digests.insert().values(model=model, kind=kind, digests=b"".join(batch), committed_at=now))
    op.drop_table("ingested")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(f"CREATE TABLE ingested ({OLD_COLUMNS}){' WITHOUT ROWID' if sqlite else ''}")   # as 0006 left it
    bind = op.get_bind()
    new = sa.table("ingest_digests", sa.column("model"), sa.column("kind"), sa.column("digests"))
    old = sa.table("ingested", sa.column("model"), sa.column("kind"), sa.column("prediction_id"))
    for model, kind, blob in bind.execute(sa.select(new.c.model, new.c.kind, new.c.digests)).all():
        rows = [{"model": model, "kind": kind, "prediction_id": blob[at:at + DIGEST_BYTES].hex()}
                for at in range(0, len(blob), DIGEST_BYTES)]
        if rows:
            bind.execute(old.insert(), rows)
    op.drop_table("ingest_digests")
