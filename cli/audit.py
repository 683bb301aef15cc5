"""`watchkeeper audit verify`: check the audit trail's hash chain; exit 1 naming the first bad entry.

Exit codes: 0 the chain is intact (the count and the newest entry's hash are printed, to be
kept elsewhere and compared next time: the chain alone cannot show its newest entries cut
off); 1 an entry was edited, deleted, inserted or reordered (the first such entry is named);
2 bad input (no store, not a database, no audit trail).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.arguments import existing_folder
from cli.main import CommandError


def add_audit_parser(commands: argparse._SubParsersAction) -> None:
    from cli.exporter import database_url

    audit = commands.add_parser("audit", help="check the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="verify the hash chain; exit 1 naming the first bad entry")
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--dir", type=existing_folder, help="a demo folder (its monitoring.db)")
    where.add_argument("--store-url", type=database_url,
                       help="SQLAlchemy URL of the store (default: $WATCHKEEPER_STORE_URL, else ./monitoring.db)")


def audit_command(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from cli.exporter import store_url
    from watchkeeper.store.audit_rows import verify_trail

    url = f"sqlite:///{_database(args.dir)}" if args.dir else store_url(args.store_url)
    try:
        count, broken, head = verify_trail(sa.create_engine(url))
    except ValueError as error:
        raise CommandError(str(error)) from None
    except sa.exc.SQLAlchemyError as error:
        raise CommandError(f"cannot read the store: {type(error).__name__}: {' '.join(str(error).split())[:200]}") \
            from None
    if broken is not None:
        print(f"audit trail BROKEN at entry {broken.seq}: {broken.reason}")
        return 1
    print(f"audit trail intact: {count} entries, head {head or '(empty)'}")
    return 0


def _database(folder: Path) -> Path:
    path = folder / "monitoring.db"
    if not path.is_file():
        raise CommandError(f"{folder}: no monitoring.db in this folder (is it a demo folder?)")
    return path
