"""`watchkeeper config validate`: check the monitoring and alerting configuration before deploying."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.arguments import input_file
from cli.main import CommandError

PROJECT = Path(__file__).resolve().parent.parent


def add_config_parser(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="validate the monitoring and alerting configuration")
    actions = config.add_subparsers(dest="config_command", required=True)
    validate = actions.add_parser("validate", help="load and check both files; exit 2 with a one-line error")
    validate.add_argument("--monitoring", type=input_file, default=PROJECT / "deploy" / "monitoring.yaml")
    validate.add_argument("--alerting", type=input_file, default=PROJECT / "deploy" / "alerting.yaml")


def config_command(args: argparse.Namespace) -> int:
    from watchkeeper.alerting.policy import PolicyError, load_policy
    from watchkeeper.config import ConfigError, load_config

    try:
        monitoring = load_config(args.monitoring)
        policy = load_policy(args.alerting)
    except (ConfigError, PolicyError) as error:
        raise CommandError(str(error)) from error
    print(f"{args.monitoring}: ok ({len(monitoring.models)} model overrides)")
    print(f"{args.alerting}: ok ({len(policy.channels)} channels, {len(policy.routes)} routes)")
    return 0
