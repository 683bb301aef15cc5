"""`watchkeeper erase` and `watchkeeper retention`: delete personal data on request or when it expires.

Both work on a demo folder (``--dir``: its store, drop folder and keys) or on a deployment's store
and drop folder (``--store-url``, ``--data-dir``; keys from the environment). They print what was
deleted as JSON; the subject of an erasure is never printed, only its digest.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path

from cli import arguments as arg
from cli.exporter import database_url

PROJECT = Path(__file__).resolve().parent.parent


def add_privacy_parsers(commands: argparse._SubParsersAction) -> None:
    erase = commands.add_parser("erase", help="delete one model's data, or one subject's rows of a model")
    erase.add_argument("--model", type=arg.name, required=True, help="registered model name")
    erase.add_argument("--subject", type=arg.name, help="only the rows of this subject (privacy.subject_column)")
    retention = commands.add_parser("retention", help="delete production rows, aggregates and alerts past "
                                                      "their retention (monitoring config `retention:`)")
    retention.add_argument("--today", type=_day, help="the day to count from (default: today, UTC)")
    for parser in (erase, retention):
        parser.add_argument("--dir", type=arg.existing_folder, help="a demo folder (its store, files and keys)")
        parser.add_argument("--store-url", type=database_url, help="monitoring store (default: $WATCHKEEPER_STORE_URL)")
        parser.add_argument("--data-dir", type=arg.existing_folder, help="drop folder (default: $WATCHKEEPER_DATA_DIR)")
        parser.add_argument("--monitoring", type=arg.input_file, default=PROJECT / "deploy" / "monitoring.yaml")


def erase_command(args: argparse.Namespace) -> int:
    from watchkeeper.privacy.erasure import ErasureError, erase_model, erase_subject
    from watchkeeper.security.audit import record_erasure

    config, root, store = _open(args)
    try:
        if args.subject is None:
            event = erase_model(root, store, args.model)
        else:
            event = erase_subject(root, args.model, args.subject, config.for_model(args.model).privacy.subject_column)
    except (ErasureError, ValueError) as error:
        from cli.main import CommandError
        raise CommandError(str(error)) from None
    record_erasure(store, event)   # actor: $WATCHKEEPER_ACTOR, else the OS user at this host
    print(json.dumps(asdict(event), indent=2))
    return 0


def retention_command(args: argparse.Namespace) -> int:
    from watchkeeper.privacy.retention import apply_retention

    config, root, store = _open(args)
    today = args.today or datetime.now(timezone.utc).date()
    print(json.dumps(asdict(apply_retention(root, store, config.retention, today)), indent=2))
    return 0


def _open(args: argparse.Namespace):
    """(monitoring config, drop folder, store) from the arguments, a demo folder, or the environment."""
    from cli.main import CommandError
    from watchkeeper.config import ConfigError, load_config
    from watchkeeper.security.kms import KMS_DIR_ENV
    from watchkeeper.store import MonitoringStore

    if args.dir is not None and not os.environ.get(KMS_DIR_ENV) and (args.dir / "secrets" / "kms").is_dir():
        os.environ[KMS_DIR_ENV] = str(args.dir / "secrets" / "kms")      # the demo's own keys
    url = args.store_url or (f"sqlite:///{args.dir / 'monitoring.db'}" if args.dir else os.environ.get("WATCHKEEPER_STORE_URL"))
    root = args.data_dir or args.dir or os.environ.get("WATCHKEEPER_DATA_DIR")
    if not url or not root:
        raise CommandError("say where the data is: --dir DEMO_DIR, or --store-url and --data-dir "
                           "(or WATCHKEEPER_STORE_URL and WATCHKEEPER_DATA_DIR)")
    try:
        config = load_config(args.monitoring)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    return config, Path(root), MonitoringStore(url)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a day as YYYY-MM-DD") from None
