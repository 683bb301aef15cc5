"""Shared-secret bearer tokens for machine clients (Prometheus scraping the exporter).

The comparison runs in constant time over fixed-length digests, so neither the content
nor the length of the expected token leaks through response timing.

>>> token = SharedToken("s" * 32)
>>> token.accepts("Bearer " + "s" * 32), token.accepts("Bearer guess"), token.accepts(None)
(True, False, False)
"""

from __future__ import annotations

import hashlib
import hmac

MIN_TOKEN_CHARS = 32


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value; '' when there is none."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class SharedToken:
    """One expected token; `accepts` checks an Authorization header against it."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"the token must be at least {MIN_TOKEN_CHARS} characters long")
        self._digest = hashlib.sha256(token.encode("utf-8")).digest()

    def accepts(self, authorization: str | None) -> bool:
        given = hashlib.sha256(bearer_token(authorization).encode("utf-8")).digest()
        return hmac.compare_digest(given, self._digest)

    def __repr__(self) -> str:   # never the token, even in a traceback's locals
        return "SharedToken(<hidden>)"
