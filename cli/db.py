"""`watchkeeper db upgrade`: migrate the monitoring store's schema to this release's;
`watchkeeper db grant --role ROLE`: give the application's PostgreSQL role least privilege.

The embedded profile migrates its SQLite store when it opens it; a deployment on PostgreSQL
runs `upgrade` then `grant` once per release as the tables' owner (e.g. as an init container),
before workers start as ROLE, which can then only add to the audit trail (docs/security.md).
"""

from __future__ import annotations

import argparse
import os

from cli.arguments import name
from cli.main import CommandError


def add_db_parser(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="manage the monitoring store's schema")
    actions = db.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate the store to the newest schema (keeps every row)")
    upgrade.add_argument("--store-url", help="SQLAlchemy URL of the store (default: $WATCHKEEPER_STORE_URL)")
    grant = actions.add_parser("grant", help="PostgreSQL: let ROLE use the store but only INSERT audit rows")
    grant.add_argument("--role", type=name, required=True, help="the database role the workers connect as")
    grant.add_argument("--store-url", help="SQLAlchemy URL of the store, as its owner (default: $WATCHKEEPER_STORE_URL)")


def db_command(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from watchkeeper.store.grants import GrantError, grant_application_role
    from watchkeeper.store.migrate import MigrationError, upgrade

    url = args.store_url or os.environ.get("WATCHKEEPER_STORE_URL")
    if not url:
        raise CommandError("no store: pass --store-url or set WATCHKEEPER_STORE_URL")
    try:
        engine = sa.create_engine(url)
        if args.db_command == "grant":
            grant_application_role(engine, args.role)
            print(f"role {args.role}: may read and write the store, and only INSERT into audit_log")
            return 0
        before, after = upgrade(engine)
    except sa.exc.ArgumentError as error:
        raise CommandError(f"--store-url: not a database URL ({error})") from error
    except (MigrationError, GrantError, sa.exc.SQLAlchemyError) as error:
        raise CommandError(" ".join(str(error).split())[:300]) from error
    print(f"store schema: {before or 'empty'} -> {after}" if before != after else f"store schema: {after} (current)")
    return 0
