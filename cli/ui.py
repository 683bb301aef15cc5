"""`watchkeeper ui`: the Dagster UI behind an authenticating front.

Dagster's webserver is started on a private loopback port; the front listens where users
connect, verifies each request's OIDC/JWT token against the issuer in
WATCHKEEPER_OIDC_* (docs/security.md), enforces roles on the GraphQL operations and
forwards what is allowed. Run in a demo folder it serves that demo, over TLS with the
demo's own certificate.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cli import arguments as arg
from cli.endpoint_security import add_tls_arguments, server_tls
from cli.exporter import database_url

DEFAULT_PORT = 3443
PROJECT = Path(__file__).resolve().parent.parent


def add_ui_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the Dagster UI behind token authentication and roles")
    parser.add_argument("--host", type=arg.name, default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs TLS)")
    parser.add_argument("--port", type=arg.port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--workspace", type=arg.input_file, default=PROJECT / "workspace.yaml",
                        help="Dagster workspace file (default: the project's workspace.yaml)")
    parser.add_argument("--store-url", type=database_url,
                        help="monitoring store whose audit trail records the logins "
                             "(default: $WATCHKEEPER_STORE_URL, else ./monitoring.db)")
    add_tls_arguments(parser)


def ui_command(args: argparse.Namespace) -> int:
    from cli.exporter import store_url
    from cli.main import CommandError
    from watchkeeper.front.logins import LoginAudit
    from watchkeeper.security.tokens import SettingsError, TokenSettings, TokenVerifier
    from watchkeeper.store import MonitoringStore

    try:
        verifier = TokenVerifier(TokenSettings.from_env())
    except SettingsError as error:
        raise CommandError(str(error)) from None
    tls = server_tls(args, args.host)
    logins = LoginAudit(MonitoringStore(store_url(args.store_url)), verifier.settings.issuer)
    dagster_port = _free_loopback_port()
    # its own process group, so that stopping it also stops the code server and run processes it started
    dagster = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(dagster_port),
                                "-w", str(args.workspace)], env=_dagster_environment(), start_new_session=True)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception it still runs `finally`
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return _serve(verifier, logins, f"http://127.0.0.1:{dagster_port}", args.host, args.port, tls)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        _stop_group(dagster)


def _exit_on_signal(signum: int, frame) -> None:
    raise SystemExit(0)


def _stop_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _serve(verifier, logins, upstream: str, host: str, port: int, tls) -> int:
    import uvicorn

    from watchkeeper.front import Front

    config = uvicorn.Config(Front(verifier, upstream, logins), host=host, port=port, ws="websockets", proxy_headers=False,
                            server_header=False, log_level="warning")
    config.load()
    config.ssl = tls.context if tls else None   # the reloading context, instead of one uvicorn would fix at start
    scheme = "https" if tls else "http"
    print(f"serving the Dagster UI on {scheme}://{host}:{port} behind token authentication "
          f"(issuer {verifier.settings.issuer}; Ctrl-C to stop)", file=sys.stderr, flush=True)
    uvicorn.Server(config).run()
    return 0


def _dagster_environment() -> dict[str, str]:
    """This environment; in a demo folder without DAGSTER_HOME, the demo's (as `watchkeeper demo` sets it)."""
    env = dict(os.environ)
    here = Path.cwd()
    if not env.get("DAGSTER_HOME") and (here / "dagster_home").is_dir():
        from cli.demo import demo_environment

        env.update(demo_environment(here))
    return env


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
