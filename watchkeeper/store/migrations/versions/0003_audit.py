"""The audit trail and versioned verdicts.

`audit_log` is append-only and hash-chained (watchkeeper/security/audit.py); a trigger refuses
UPDATE and DELETE on it (and TRUNCATE on PostgreSQL), so an accident cannot rewrite it and a
deliberate edit needs the table owner to drop the trigger first, which `watchkeeper audit verify`
then catches anyway. `verdict_versions` keeps every verdict a window was given; existing
verdicts become their window's first version.

Revision ID: 0003_audit
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_audit"
down_revision = "0002"
branch_labels = None
depends_on = None

REFUSE = "audit_log is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False), sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False), sa.Column("subject", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)), sa.Column("partition", sa.String(100)),
        sa.Column("details_json", sa.Text, nullable=False), sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False))
    op.create_index("ix_audit_log_action", "audit_log", ["action", "subject", "seq"])
    versions = op.create_table(
        "verdict_versions",
        sa.Column("model", sa.String(200), primary_key=True), sa.Column("window", sa.String(10), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True), sa.Column("version", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False), sa.Column("reasons_json", sa.Text, nullable=False),
        sa.Column("lineage_json", sa.Text, nullable=False), sa.Column("run_id", sa.String(64)),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False))
    health = sa.table("health", *(sa.column(c) for c in ("model", "window", "version", "status", "reasons_json")))
    conn = op.get_bind()
    conn.execute(versions.insert().from_select(
        ["model", "window", "revision", "version", "status", "reasons_json", "lineage_json", "decided_at"],
        sa.select(health.c.model, health.c.window, sa.literal(1), health.c.version, health.c.status,
                  health.c.reasons_json, sa.literal("{}"), sa.func.current_timestamp())))
    if conn.dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
                       $$ BEGIN RAISE EXCEPTION '{REFUSE}'; END $$""")
        op.execute("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSE}'); END")


def downgrade() -> None:
    raise NotImplementedError("the audit trail is never dropped by a migration: restore from a backup")
