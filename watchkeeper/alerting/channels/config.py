"""Checks of channel constructor arguments: a bad config fails when the policy is loaded,
with one line naming the argument, not at the first alert.

Every built-in channel sends a credential (a token, a password, or a webhook URL that is
itself one), so it talks https only. A plain http:// URL is refused, except to a loopback
host (127.0.0.0/8, ::1, localhost) when the channel says `allow_http_loopback: true`: that
is for local stand-in servers in tests, and for a TLS-terminating proxy on the same host.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit


def require_text(channel: str, **values: str | None) -> None:
    for arg, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{channel} channel: {arg} must be a non-empty string, got {value!r}")


def require_https(channel: str, allow_http_loopback: bool, **values: str) -> None:
    """Each value an https URL with a host (http only to loopback, and only when allowed)."""
    require_text(channel, **values)
    if not isinstance(allow_http_loopback, bool):
        raise ValueError(f"{channel} channel: allow_http_loopback must be true or false, got {allow_http_loopback!r}")
    for arg, value in values.items():
        problem = insecure_url_problem(value, allow_http_loopback)
        if problem:
            raise ValueError(f"{channel} channel: {arg} {problem}, got {value!r}")


def insecure_url_problem(url: str, allow_http_loopback: bool) -> str | None:
    """Why `url` may not carry a credential, or None. The text never repeats the URL (it may be a secret)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if not parts.hostname or parts.scheme not in ("https", "http"):
        return "must be an https:// URL with a host"
    if parts.scheme == "http" and not (allow_http_loopback and loopback_host(parts.hostname)):
        return ("must be https: plain http would send the credential in clear text "
                "(allow_http_loopback: true permits http to a loopback host only)")
    return None


def loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ca_bundle_setting(channel: str, ca_bundle: str | None) -> str | bool:
    """What `requests` takes as `verify`: the CA file to trust for a server whose certificate a
    private CA signed, else True (the system's trust store). Verification itself cannot be turned off."""
    if ca_bundle is None:
        return True
    require_text(channel, ca_bundle=ca_bundle)
    if not os.path.isfile(ca_bundle):
        raise ValueError(f"{channel} channel: ca_bundle {ca_bundle!r} is not a file")
    return ca_bundle


def require_timeout(channel: str, timeout: float) -> None:
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout <= 300):
        raise ValueError(f"{channel} channel: timeout must be a positive number of seconds (at most 300), "
                         f"got {timeout!r}")
