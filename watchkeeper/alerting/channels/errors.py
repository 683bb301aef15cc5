"""Failures of outside services as ChannelError, and secrets read from the environment.

The outbox owns retries, so a channel's only job on failure is to say which kind it was:
- 429: retry, after the service's Retry-After when it gave one;
- 5xx, 408, timeouts, refused or dropped connections: retry (the service may come back);
- any other 4xx, a missing credential, a malformed URL: permanent (retrying cannot help).

Messages name the service, the HTTP status and the service's own short error code, never a
URL, header or exception text from a client library: those can carry a token (a Teams
workflow URL is itself the credential; jira's JIRAError prints the request headers).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

from watchkeeper.alerting.record import ChannelError

DETAIL_CHARS = 200


def read_secret(env_name: str, service: str) -> str:
    """The value of `env_name`, read now (so a rotated secret is picked up without a restart)."""
    value = os.environ.get(env_name, "")
    if not value:
        raise ChannelError(f"{service}: environment variable {env_name} is not set", permanent=True)
    return value


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced, so a service that echoes a request cannot leak one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_for_status(service: str, status: int, retry_after: str | None = None, detail: str = "",
                     secrets: tuple[str, ...] = ()) -> ChannelError:
    """The ChannelError for an HTTP error status; `detail` is the service's short error text."""
    shown = " ".join(redact(detail, secrets).split())[:DETAIL_CHARS]   # one line, however the service answered
    suffix = f": {shown}" if shown else ""
    if status == 429:
        return ChannelError(f"{service}: rate limited (HTTP 429){suffix}", retry_after=parse_retry_after(retry_after))
    if status >= 500 or status == 408:
        return ChannelError(f"{service}: HTTP {status}{suffix}", retry_after=parse_retry_after(retry_after))
    return ChannelError(f"{service}: HTTP {status}{suffix}", permanent=True)


def error_for_exception(service: str, exc: BaseException) -> ChannelError | None:
    """The ChannelError for a transport failure or an answer that is not JSON, or None when `exc` is
    neither (a bug: let it raise)."""
    if isinstance(exc, json.JSONDecodeError):   # e.g. a proxy's HTML page with HTTP 200: the service may recover
        return ChannelError(f"{service}: unexpected answer (not JSON)")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return ChannelError(f"{service}: malformed URL ({type(exc).__name__})", permanent=True)
    if _untrusted_certificate(exc):   # retried: a renewed certificate or a fixed ca_bundle lets it through
        return ChannelError(f"{service}: the server's TLS certificate is not trusted (a private CA needs the "
                            "channel's ca_bundle)")
    if isinstance(exc, requests.exceptions.ReadTimeout) or _is_timeout(exc):
        return ChannelError(f"{service}: no answer in time, delivery unknown ({type(exc).__name__})")
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return ChannelError(f"{service}: connection failed ({type(exc).__name__})")
    return None


def _untrusted_certificate(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether a certificate verification failure is behind `exc` (requests and urllib wrap it
    in their own errors: in `reason`, in `args`, or as the cause)."""
    if exc is None or depth > 5:
        return False
    if isinstance(exc, (ssl.SSLCertVerificationError, requests.exceptions.SSLError)):
        return True
    inner = [getattr(exc, "reason", None), exc.__cause__, exc.__context__,
             *(a for a in getattr(exc, "args", ()) if isinstance(a, BaseException))]
    return any(_untrusted_certificate(e, depth + 1) for e in inner if isinstance(e, BaseException))


def _is_timeout(exc: BaseException) -> bool:
    """urllib (slack_sdk) raises TimeoutError on a slow answer, URLError(TimeoutError) on a slow connect."""
    return isinstance(exc, TimeoutError) or (isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError))


@contextmanager
def transport_failures(service: str) -> Iterator[None]:
    """Turn timeouts and connection failures inside the block into a ChannelError.

    `from None` drops the client's exception from the chain: its text can hold a URL that is
    itself a credential, and tracebacks end up in logs.
    """
    try:
        yield
    except ChannelError:
        raise
    except Exception as exc:
        error = error_for_exception(service, exc)
        if error is None:
            raise
        raise error from None
