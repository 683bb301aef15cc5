"""`watchkeeper ingest`: consume inference events and labels from a stream into the inference log.

Runs until stopped (SIGTERM or Ctrl-C finish the batch in hand), or until no message came for
--idle-exit seconds; prints what it stored as one JSON object (or a line of text) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from cli import arguments as arg

DEFAULT_BATCH = 20_000   # = watchkeeper.ingest.consumer.DEFAULT_BATCH; not imported: building the parser stays cheap


def add_ingest_parser(subparsers: argparse._SubParsersAction) -> None:
    from cli.exporter import database_url

    parser = subparsers.add_parser("ingest", help="consume inference events and labels from NATS, Redis or Kafka")
    parser.add_argument("--source", required=True, metavar="URL",
                        help="nats://host:4222/STREAM?subject=..., redis://host:6379/0?stream=..., "
                             "kafka://host:9092/TOPIC (docs/streams.md)")
    parser.add_argument("--dir", type=Path, help="the inference log's drop folder (default: $WATCHKEEPER_DATA_DIR, "
                                                 "else here)")
    parser.add_argument("--store-url", type=database_url, help="SQLAlchemy URL of the monitoring store "
                        "(default: $WATCHKEEPER_STORE_URL, else ./monitoring.db)")
    parser.add_argument("--policy", type=arg.input_file, help="alert policy for concept-drift alerts "
                        "(default: $WATCHKEEPER_ALERT_POLICY; none: detectors are fed, no alert is queued)")
    parser.add_argument("--consumer", type=arg.name, help="this consumer's name in the group (default: from the URL, "
                                                         "else host and process id)")
    parser.add_argument("--batch", type=arg.positive_int, default=DEFAULT_BATCH,
                        help="messages per fetch and per commit (default %(default)s)")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="stop after this long without a message (default: run until stopped)")
    parser.add_argument("--format", choices=["json", "text"], default="json")


def ingest_command(args: argparse.Namespace) -> int:
    from cli.exporter import store_url
    from cli.main import CommandError
    from watchkeeper.alerting.policy import PolicyError, load_policy
    from watchkeeper.ingest import Consumer, SourceError, open_source
    from watchkeeper.ingest.writer import IngestWriteError
    from watchkeeper.security.signing import SignatureError, signing_key
    from watchkeeper.store import MonitoringStore
    from watchkeeper.store.ingest_rows import DedupeIndexError

    root = args.dir or Path(os.environ.get("WATCHKEEPER_DATA_DIR") or Path.cwd())
    if not root.is_dir():
        raise CommandError(f"--dir {root}: not a folder")
    policy_path = args.policy or os.environ.get("WATCHKEEPER_ALERT_POLICY")
    try:
        signing_key()   # the detectors' state is signed: without a key no label could be fed
        policy = load_policy(policy_path) if policy_path else None
        source = open_source(args.source, args.consumer)
    except (PolicyError, SourceError, SignatureError) as error:
        raise CommandError(str(error)) from None
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    try:
        consumer = Consumer(source, MonitoringStore(store_url(args.store_url)), root, policy, batch=args.batch)
        stats = consumer.run(lambda: bool(stopping), args.idle_exit)
    except (DedupeIndexError, IngestWriteError) as error:   # nothing acknowledged: the broker keeps the batch
        raise CommandError(str(error)) from None
    finally:
        source.close()
    summary = {"source": source.name, **stats.to_dict()}
    print(json.dumps(summary) if args.format == "json"
          else " ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    return 0
