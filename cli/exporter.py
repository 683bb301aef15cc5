"""`watchkeeper exporter`: the monitoring store on /metrics for Prometheus, or pushed once
to a Pushgateway.

Run in a demo folder it needs no setup: the store defaults to ./monitoring.db and the
pipeline durations to the Dagster instance in ./dagster_home. Only argparse and the
standard library are imported here at module level, so `watchkeeper --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cli import arguments as arg
from cli.endpoint_security import add_tls_arguments, demo_secret_file, server_tls

DEFAULT_PORT = 9715
DEFAULT_MAX_FEATURES = 50
TOKEN_ENV = "WATCHKEEPER_EXPORTER_TOKEN"
TOKEN_FILE = "exporter.token"   # under ./secrets in a demo folder, made by `watchkeeper demo`
RECENT_RUNS = 500   # run records read per scrape for the pipeline series


def add_exporter_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("exporter", help="serve Prometheus metrics from the monitoring store on /metrics")
    parser.add_argument("--port", type=arg.port_or_any, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 for any free port)")
    parser.add_argument("--host", type=arg.name, default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 to be scraped from other hosts)")
    parser.add_argument("--store-url", type=database_url, help="SQLAlchemy URL of the monitoring store "
                        "(default: $WATCHKEEPER_STORE_URL, else ./monitoring.db)")
    parser.add_argument("--max-features-per-model", type=arg.positive_int, default=DEFAULT_MAX_FEATURES,
                        help="drift series per model, most drifted first (default %(default)s)")
    parser.add_argument("--dagster-home", type=arg.existing_folder, help="Dagster instance whose runs give the pipeline "
                        "durations (default: $DAGSTER_HOME, else ./dagster_home when it exists)")
    parser.add_argument("--push-gateway", metavar="URL", type=arg.http_url,
                        help="push the metrics once to this Pushgateway and exit instead of serving")
    parser.add_argument("--job", type=arg.name, default="watchkeeper", help="Pushgateway job name (default %(default)s)")
    add_tls_arguments(parser)
    parser.add_argument("--client-ca", type=arg.input_file, help="require client certificates signed by this CA "
                        "(mutual TLS) instead of a bearer token")


def exporter_command(args: argparse.Namespace) -> int:
    from cli.main import CommandError
    from watchkeeper.metrics_export import PipelineCollector, StoreCollector

    store = StoreCollector(store_url(args.store_url), max_features_per_model=args.max_features_per_model)
    sources = [store]
    home = dagster_home(args.dagster_home)
    if home is not None:
        sources.append(PipelineCollector(dagster_runs(home)))
    try:   # a store or instance that cannot be read fails now, in one line, not at every scrape
        for source in sources:
            source.gauges()
    except Exception as error:
        raise CommandError(f"cannot read {_describe(store.store_url, home)}: {_first_line(error)}") from error
    if args.push_gateway:
        return _push(args.push_gateway, args.job, sources)
    tls = server_tls(args, args.host, args.client_ca)
    token = None if args.client_ca else scrape_token()
    return _serve(sources, args.host, args.port, store.store_url, home, token, tls)


def scrape_token():
    """The token a scrape must present: $WATCHKEEPER_EXPORTER_TOKEN, else ./secrets/exporter.token."""
    from cli.main import CommandError
    from watchkeeper.security.bearer import SharedToken

    path = demo_secret_file(TOKEN_FILE)
    text = os.environ.get(TOKEN_ENV) or (path.read_text() if path else "")
    if not text:
        raise CommandError(f"the exporter needs credentials: set {TOKEN_ENV} (or run it in a demo folder, "
                           "which has secrets/exporter.token), or pass --client-ca for mutual TLS")
    try:
        return SharedToken(text)
    except ValueError as error:
        raise CommandError(f"{TOKEN_ENV if os.environ.get(TOKEN_ENV) else path}: {error}") from None


def store_url(given: str | None) -> str:
    """--store-url, else $WATCHKEEPER_STORE_URL, else ./monitoring.db, which must exist."""
    from cli.main import CommandError

    if given:
        return given
    url = os.environ.get("WATCHKEEPER_STORE_URL")
    if url:
        try:
            return database_url(url)
        except argparse.ArgumentTypeError as error:
            raise CommandError(f"WATCHKEEPER_STORE_URL: {error}") from None
    default = Path.cwd() / "monitoring.db"
    if not default.exists():
        raise CommandError(f"no monitoring store: {default} does not exist (run `watchkeeper demo --headless` "
                           "here, or pass --store-url or set WATCHKEEPER_STORE_URL)")
    return f"sqlite:///{default}"


def database_url(text: str) -> str:
    """A SQLAlchemy URL (sqlite:///monitoring.db, postgresql+psycopg2://...), checked before any work."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        # the text is not echoed: a database URL can hold a password
        raise argparse.ArgumentTypeError("not a database URL (e.g. sqlite:///monitoring.db or "
                                         "postgresql+psycopg2://user@host/db)") from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such SQLite database")
    return text


def dagster_home(given: Path | None) -> Path | None:
    """--dagster-home, else $DAGSTER_HOME, else ./dagster_home when it exists, else none."""
    from cli.main import CommandError

    home = given or (Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else None)
    if home is not None and not home.is_dir():
        raise CommandError(f"the Dagster home {home} is not a folder")
    local = Path.cwd() / "dagster_home"
    return home or (local if local.is_dir() else None)


def dagster_runs(home: Path, limit: int = RECENT_RUNS) -> Callable[[], list]:
    """A callable returning the newest finished runs of the Dagster instance in `home`."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from watchkeeper.metrics_export import RunTiming

    instance = DagsterInstance.from_config(str(home))
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]

    def runs() -> list[RunTiming]:
        records = instance.get_run_records(filters=RunsFilter(statuses=finished), limit=limit)
        return [RunTiming(r.dagster_run.job_name, r.dagster_run.status.value.lower(), r.start_time, r.end_time)
                for r in records if r.start_time is not None and r.end_time is not None]

    return runs


def _push(gateway: str, job: str, sources: list) -> int:
    from prometheus_client import CollectorRegistry

    from cli.main import CommandError
    from watchkeeper.metrics_export import push_metrics

    registry = CollectorRegistry(auto_describe=False)
    for source in sources:
        registry.register(source)
    try:
        push_metrics(gateway, job, registry)
    except OSError as error:
        raise CommandError(f"push to {gateway} failed: {_first_line(error)}") from error
    print(f"pushed the metrics to {gateway} as job {job}", file=sys.stderr)
    return 0


def _serve(sources: list, host: str, port: int, url: str, home: Path | None, token, tls) -> int:
    from cli.main import CommandError
    from watchkeeper.metrics_export import serve

    try:
        server, thread = serve(sources, host, port, token, tls.context if tls else None)
    except OSError as error:
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    scheme, credential = ("https", "mutual TLS" if token is None else "bearer token") if tls else ("http", "bearer token")
    print(f"serving {_describe(url, home)} on {scheme}://{host}:{server.server_address[1]}/metrics "
          f"({credential} required; Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    finally:
        server.server_close()
    return 0


def _describe(url: str, home: Path | None) -> str:
    from sqlalchemy.engine import make_url

    store = make_url(url).render_as_string(hide_password=True)
    return f"the store {store}" + (f" and the Dagster runs in {home}" if home else "")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
