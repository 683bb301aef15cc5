"""Schema migrations of the monitoring store (Alembic), run by `watchkeeper db upgrade` and at start-up.

A store created by the first release (tables made with `create_all`, no alembic_version table)
is stamped with revision 0001 and upgraded like any other. Opening a store checks its revision
with one query and migrates only when it is behind, under a lock on PostgreSQL so that many
workers starting at once migrate it once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa

MIGRATIONS = Path(__file__).parent / "migrations"
RELEASE_0001 = "0001"
_LOCK_ID = 0x5741544348   # pg_advisory_xact_lock key: "WATCH"


class MigrationError(RuntimeError):
    """The store's schema is newer than this code, or a migration failed (one line)."""


def _config(conn: sa.Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@cache
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    return _scripts().get_current_head()


def current(conn: sa.Connection) -> str | None:
    """The store's revision; RELEASE_0001 for a first-release store that was never stamped."""
    inspector = sa.inspect(conn)
    if inspector.has_table("alembic_version"):
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return RELEASE_0001 if inspector.has_table("profiles") else None


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the store to the newest schema; returns (revision before, revision after)."""
    from alembic import command

    target = head()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        before = current(conn)
        if before == target:
            return before, target
        if before is not None and not _known(before):
            raise MigrationError(f"the store is at schema revision {before}, newer than this Watchkeeper ({target})")
        config = _config(conn)
        if before == RELEASE_0001 and not sa.inspect(conn).has_table("alembic_version"):
            command.stamp(config, RELEASE_0001)
        command.upgrade(config, target)
    return before, target


def ensure_current(engine: sa.Engine) -> None:
    """Migrate when behind; cheap when current (one query), so every store open can call it."""
    with engine.connect() as conn:
        if current(conn) == head():
            return
    upgrade(engine)


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False
