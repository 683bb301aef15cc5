"""`watchkeeper fleet submit`: queue the sharded window runs of a range of days (a backfill).

A backfill launched from the UI runs each day as one run of the whole fleet. This command asks a
running webserver (the production profile's) to queue one run per shard per day instead, the
same runs the inference sensor asks for, so the run queue's tag limits and the Celery workers
spread a backfill exactly as they spread a day. It prints the run ids as JSON; with --wait it
waits for them and exits 1 if any failed.

    watchkeeper fleet submit --from 2026-11-01 --to 2026-11-14 --shards 8 --url http://127.0.0.1:3000
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from urllib.parse import urlsplit

from cli.main import CommandError

LOCATION = "watchkeeper"
JOBS = ("evaluate_window", "refresh_labels")
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def add_fleet_parser(commands: argparse._SubParsersAction) -> None:
    from cli import arguments as arg

    fleet = commands.add_parser("fleet", help="run a large fleet's windows in shards (production profile)")
    actions = fleet.add_subparsers(dest="fleet_command", required=True)
    submit = actions.add_parser("submit", help="queue one run per shard for each day of a range (a backfill)")
    submit.add_argument("--from", dest="first", type=_day, required=True, help="first day (YYYY-MM-DD)")
    submit.add_argument("--to", dest="last", type=_day, help="last day (default: the first)")
    submit.add_argument("--shards", type=arg.positive_int, required=True, help="shards per day")
    submit.add_argument("--job", choices=JOBS, default=JOBS[0])
    submit.add_argument("--url", type=arg.http_url, default="http://127.0.0.1:3000", help="the Dagster webserver")
    submit.add_argument("--wait", action="store_true", help="wait for the runs; exit 1 if any failed")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day like 2026-11-01, got {text[:40]!r}") from None


def fleet_command(args: argparse.Namespace) -> int:
    last = args.last or args.first
    if last < args.first:
        raise CommandError(f"--to {last} is before --from {args.first}")
    days = [(args.first + timedelta(days=i)).isoformat() for i in range((last - args.first).days + 1)]
    client = graphql_client(args.url)
    runs = submit_shards(client, args.job, days, args.shards)
    print(json.dumps({"job": args.job, "days": days, "shards": args.shards, "runs": runs}))
    if args.wait:
        statuses = wait_for(client, runs)
        return 0 if all(s == "SUCCESS" for s in statuses.values()) else 1
    return 0


def graphql_client(url: str):
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(url)
    return DagsterGraphQLClient(parts.hostname, port_number=parts.port, use_https=parts.scheme == "https")


def submit_shards(client, job: str, days: list[str], shards: int) -> list[str]:
    """Queue one run of `job` per shard and day; returns their run ids (CommandError when refused)."""
    from dagster_graphql import DagsterGraphQLClientError

    from monitoring_assets.sharding import shard_run_config, shard_tags
    from watchkeeper.shards import all_shards

    runs = []
    for day in days:
        for shard in all_shards(shards):
            try:
                runs.append(client.submit_job_execution(
                    job, repository_location_name=LOCATION, run_config=shard_run_config(shard),
                    tags={"dagster/partition": day, **shard_tags(day, shard)}))
            except DagsterGraphQLClientError as error:
                raise CommandError(f"could not queue {job} for {day} shard {shard.label()} at the webserver: {error}") from error
    return runs


def wait_for(client, runs: list[str], poll_seconds: float = 1.0) -> dict[str, str]:
    """Each run's final status (SUCCESS, FAILURE or CANCELED), once every run has one."""
    statuses: dict[str, str] = {}
    while len(statuses) < len(runs):
        for run in (r for r in runs if r not in statuses):
            status = client.get_run_status(run).value
            if status in DONE:
                statuses[run] = status
        time.sleep(poll_seconds if len(statuses) < len(runs) else 0)
    return statuses
