"""TLS and credentials of the endpoints the `watchkeeper` command serves (exporter, UI front).

Each setting comes from its option, else the environment, else - in a demo folder - the
files `watchkeeper demo` made under ./secrets (a private CA, a certificate for 127.0.0.1
and localhost, the exporter's token). A non-loopback address is never served without TLS.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cli import arguments as arg

TLS_CERT_ENV, TLS_KEY_ENV = "WATCHKEEPER_TLS_CERT", "WATCHKEEPER_TLS_KEY"
DEMO_SECRETS = "secrets"   # under the demo folder, see cli/demo.py


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert", type=arg.input_file, help=f"PEM certificate chain (default: ${TLS_CERT_ENV}, "
                        "else ./secrets/tls.crt in a demo folder); reloaded when the file changes")
    parser.add_argument("--tls-key", type=arg.input_file, help=f"PEM private key (default: ${TLS_KEY_ENV}, "
                        "else ./secrets/tls.key in a demo folder)")


def server_tls(args: argparse.Namespace, host: str, client_ca: Path | None = None):
    """The reloading TLS context to serve with, or None for plain HTTP (loopback only)."""
    from cli.main import CommandError
    from watchkeeper.security.tls import ReloadingServerContext

    demo = Path.cwd() / DEMO_SECRETS
    cert = args.tls_cert or _env_path(TLS_CERT_ENV) or _existing(demo / "tls.crt")
    key = args.tls_key or _env_path(TLS_KEY_ENV) or _existing(demo / "tls.key")
    if (cert is None) != (key is None):
        raise CommandError("give both a TLS certificate and its key (--tls-cert and --tls-key)")
    if cert is None:
        from watchkeeper.alerting.channels.config import loopback_host

        if not loopback_host(host):
            raise CommandError(f"refusing to serve {host} without TLS: pass --tls-cert and --tls-key")
        if client_ca is not None:
            raise CommandError("--client-ca (mutual TLS) needs --tls-cert and --tls-key")
        return None
    try:
        context = ReloadingServerContext(cert, key, client_ca)
    except (OSError, ValueError) as error:   # ssl.SSLError is an OSError
        raise CommandError(f"cannot use the TLS certificate {cert} and key {key}: {error}") from error
    context.watch()
    return context


def demo_secret_file(name: str) -> Path | None:
    """./secrets/<name> when the current folder is a demo folder that has it."""
    return _existing(Path.cwd() / DEMO_SECRETS / name)


def _env_path(name: str) -> Path | None:
    from cli.main import CommandError

    value = os.environ.get(name)
    if not value:
        return None
    if not Path(value).is_file():
        raise CommandError(f"{name}: {value} is not a file")
    return Path(value)


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None
