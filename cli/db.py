"""`watchkeeper db upgrade`: migrate the monitoring store's schema to this release's.

The embedded profile migrates its SQLite store when it opens it; a deployment on PostgreSQL
runs this once per release (e.g. as an init container), before workers start.
"""

from __future__ import annotations

import argparse
import os

from cli.main import CommandError


def add_db_parser(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="manage the monitoring store's schema")
    actions = db.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate the store to the newest schema (keeps every row)")
    upgrade.add_argument("--store-url", help="SQLAlchemy URL of the store (default: $WATCHKEEPER_STORE_URL)")


def db_command(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from watchkeeper.store.migrate import MigrationError, upgrade

    url = args.store_url or os.environ.get("WATCHKEEPER_STORE_URL")
    if not url:
        raise CommandError("no store: pass --store-url or set WATCHKEEPER_STORE_URL")
    try:
        engine = sa.create_engine(url)
        before, after = upgrade(engine)
    except sa.exc.ArgumentError as error:
        raise CommandError(f"--store-url: not a database URL ({error})") from error
    except (MigrationError, sa.exc.SQLAlchemyError) as error:
        raise CommandError(" ".join(str(error).split())[:300]) from error
    print(f"store schema: {before or 'empty'} -> {after}" if before != after else f"store schema: {after} (current)")
    return 0
