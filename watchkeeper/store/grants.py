"""Least privilege for the application's database role on PostgreSQL.

The application reads and writes results, the problem log and the outbox, but may only add to
the audit trail: `grant_application_role` gives a role what the workers need and refuses it
UPDATE, DELETE and TRUNCATE on `audit_log` (and any change to the schema revision). Run it as
the tables' owner, after `watchkeeper db upgrade`, each release (new tables need their grants).
The owner keeps every right; the append-only triggers of migration 0003 stop accidents there.
"""

from __future__ import annotations

import sqlalchemy as sa

from watchkeeper.store.schema import audit_log

STATEMENTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    f"REVOKE ALL ON {audit_log.name} FROM PUBLIC",
    f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit_log.name} FROM {{role}}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
)


class GrantError(ValueError):
    """The grants cannot be applied (one line)."""


def grant_application_role(engine: sa.Engine, role: str) -> list[str]:
    """Apply the application role's privileges in one transaction; returns the statements run."""
    if engine.dialect.name != "postgresql":
        raise GrantError(f"database roles are a PostgreSQL feature, not {engine.dialect.name}'s: an embedded SQLite "
                         "store is protected by its file's permissions and the audit log's triggers")
    quoted = engine.dialect.identifier_preparer.quote(role)
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
            raise GrantError(f"no database role named {role!r} (CREATE ROLE it first)")
        if not sa.inspect(conn).has_table(audit_log.name):
            raise GrantError("the store has no audit trail yet: run `watchkeeper db upgrade` first")
        done = [statement.format(role=quoted) for statement in STATEMENTS]
        for statement in done:
            conn.exec_driver_sql(statement)
    return done
