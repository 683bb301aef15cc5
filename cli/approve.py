"""`watchkeeper approve --model M --version V`: approve a promotion waiting for a person.

The same as approving its change request in Jira or ServiceNow (watchkeeper.retraining.approval):
the champion alias moves to V, the change is resolved and its ticket told. Exit 0 when done,
2 with one line when V is not waiting for approval or a store or registry cannot be used.
"""

from __future__ import annotations

import argparse
import getpass
import os

from cli import arguments as arg
from cli.main import CommandError


def add_approve_parser(commands: argparse._SubParsersAction) -> None:
    approve = commands.add_parser("approve", help="approve a challenger waiting for approval: it becomes the champion")
    approve.add_argument("--model", type=arg.name, required=True, help="registered model name")
    approve.add_argument("--version", type=arg.version, required=True, help="the challenger's version number")
    approve.add_argument("--tracking-uri", type=arg.tracking_uri,
                         help="MLflow tracking/registry URI (default: $WATCHKEEPER_MLFLOW_URI)")
    approve.add_argument("--store-url", help="monitoring store URL (default: $WATCHKEEPER_STORE_URL)")
    approve.add_argument("--by", type=arg.name, help="who approves (default: the user running the command)")


def approve_command(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from watchkeeper.problems import ProblemLog
    from watchkeeper.registry import Registry
    from watchkeeper.retraining.approval import ApprovalError, approve_promotion
    from watchkeeper.store import MonitoringStore

    uri = args.tracking_uri or os.environ.get("WATCHKEEPER_MLFLOW_URI")
    url = args.store_url or os.environ.get("WATCHKEEPER_STORE_URL")
    if not uri or not url:
        raise CommandError("pass --tracking-uri and --store-url, or set WATCHKEEPER_MLFLOW_URI and WATCHKEEPER_STORE_URL")
    try:
        log = ProblemLog(MonitoringStore(url))
        print(approve_promotion(Registry(uri), log, args.model, args.version, args.by or getpass.getuser()))
    except ApprovalError as error:
        raise CommandError(str(error)) from None
    except (sa.exc.ArgumentError, sa.exc.SQLAlchemyError) as error:
        raise CommandError(f"--store-url: {' '.join(str(error).split())[:200]}") from None
    return 0
