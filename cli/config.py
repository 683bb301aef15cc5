"""`watchkeeper config validate`: check the monitoring, alerting and residency configuration before
deploying.

With a residency policy (--residency, default $WATCHKEEPER_RESIDENCY_POLICY), every place the
configuration writes or sends to is located and checked: the monitoring store, the window
storage, MLflow tracking and artifacts (each from its option or environment variable, when
given) and each alert channel. Every violation is listed, one line each, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.arguments import input_file
from cli.main import CommandError

PROJECT = Path(__file__).resolve().parent.parent


def add_config_parser(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="validate the monitoring, alerting and residency configuration")
    actions = config.add_subparsers(dest="config_command", required=True)
    validate = actions.add_parser("validate", help="load and check the files; exit 2 with one line per problem")
    validate.add_argument("--monitoring", type=input_file, default=PROJECT / "deploy" / "monitoring.yaml")
    validate.add_argument("--alerting", type=input_file, default=PROJECT / "deploy" / "alerting.yaml")
    validate.add_argument("--residency", type=input_file, default=os.environ.get("WATCHKEEPER_RESIDENCY_POLICY") or None,
                          help="residency policy YAML (default: $WATCHKEEPER_RESIDENCY_POLICY; none: not checked)")
    for option, env, what in (("--store-url", "WATCHKEEPER_STORE_URL", "the monitoring store"),
                              ("--data-dir", "WATCHKEEPER_DATA_DIR", "the drop folder and window storage"),
                              ("--mlflow-uri", "WATCHKEEPER_MLFLOW_URI", "MLflow tracking"),
                              ("--mlflow-artifacts", "WATCHKEEPER_MLFLOW_ARTIFACTS", "MLflow's artifact root")):
        validate.add_argument(option, default=os.environ.get(env) or None, help=f"{what} (default: ${env})")


def config_command(args: argparse.Namespace) -> int:
    from watchkeeper.alerting.policy import PolicyError, load_policy
    from watchkeeper.config import ConfigError, load_config
    from watchkeeper.security.residency import ResidencyError, load_residency

    try:
        monitoring = load_config(args.monitoring)
        policy = load_policy(args.alerting)
        residency = load_residency(args.residency) if args.residency else None
    except (ConfigError, PolicyError, ResidencyError) as error:
        raise CommandError(str(error)) from error
    print(f"{args.monitoring}: ok ({len(monitoring.models)} model overrides)")
    print(f"{args.alerting}: ok ({len(policy.channels)} channels, {len(policy.routes)} routes)")
    if residency is None:
        print("residency: no policy given (--residency or $WATCHKEEPER_RESIDENCY_POLICY): nothing checked")
        return 0
    return _residency(args, residency, policy)


def _residency(args: argparse.Namespace, residency, policy) -> int:
    from watchkeeper.security.residency import configured_destinations

    destinations = configured_destinations(policy, store=args.store_url, data_dir=args.data_dir,
                                           mlflow_uri=args.mlflow_uri, mlflow_artifacts=args.mlflow_artifacts)
    problems = [p for p in (residency.problem(*d) for d in destinations) if p is not None]
    for problem in problems:
        print(f"watchkeeper config validate: error: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"{args.residency}: ok ({len(destinations)} destinations within the policy)")
    return 0
