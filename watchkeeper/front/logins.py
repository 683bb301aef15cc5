"""Logins at the UI front, in the audit trail: who came in, who was turned away, whose role changed.

The front verifies a token on every request, and the Dagster UI sends many requests a second, so
an entry per request would drown the trail. A *login* is the first request that carries a given
token (its SHA-256 is remembered until the token expires, never the token); a *refused login* is
the first request that carries a given token which does not verify. A request with no token at
all is not a login attempt (a browser before its session, a health probe): it gets 401 and no
entry. A *role change* is a subject whose token grants another Watchkeeper role than at its
previous login, as the trail itself records it (so it holds across restarts of the front); the
identity provider granted it, so the issuer is the actor.

The actor of a login is the token's subject. A refused token's subject cannot be trusted, so it is
recorded as claimed (`details.subject_verified` false), or `unknown` when it has none.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import jwt

from watchkeeper.security.audit import LOGIN, record_login, record_role_change
from watchkeeper.security.tokens import Principal
from watchkeeper.store import MonitoringStore

MAX_REMEMBERED = 100_000      # token digests kept; expired ones are dropped first
REFUSED_MEMORY_SECONDS = 3600   # a refused token is audited again after this long
REFUSED_PER_REMOTE = 20         # refused logins audited one by one per address and hour; then one entry says so
SUBJECT_CHARS = 200
log = logging.getLogger(__name__)


class AuditUnavailable(RuntimeError):
    """The audit trail cannot be written: the front lets nobody in unaudited (HTTP 503)."""


class LoginAudit:
    """Audits logins, refused logins and role changes at the front; thread-safe."""

    def __init__(self, store: MonitoringStore, issuer: str) -> None:
        self.store, self.issuer = store, issuer
        self._seen: dict[str, float] = {}             # sha256(token) -> until when it counts as seen
        self._roles: dict[str, str | None] | None = None   # subject -> role label at its last login
        self._refusals: dict[str | None, tuple[float, int]] = {}   # remote -> (start of its hour, refusals)
        self._lock = threading.Lock()

    def accepted(self, token: str, principal: Principal, remote: str | None) -> None:
        """A verified token: a login when this token is new here, and a role change before it when
        the subject's role differs from its last login. AuditUnavailable when that cannot be written."""
        role = principal.role.label if principal.role else None
        with self._lock:
            if not self._first_sight(token, principal.expires_at):
                return
            try:
                roles, subject = self._last_roles(), principal.subject
                previous = roles.get(subject)
                if subject in roles and previous != role:
                    record_role_change(self.store, subject, [role] if role else [], actor=self.issuer,
                                       previous=[previous] if previous else [])
                record_login(self.store, subject, ok=True,
                             details={"issuer": self.issuer, "role": role, "remote": remote})
                roles[subject] = role
            except Exception as error:   # the store's errors: nobody in without an entry
                self._seen.pop(_digest(token), None)
                log.error("cannot audit a login: %s", type(error).__name__)
                raise AuditUnavailable("the audit trail cannot be written; try again later") from None

    def refused(self, token: str, reason: str, remote: str | None) -> None:
        """A token that did not verify (never called without a token); a failure to audit it is logged."""
        with self._lock:
            if not self._first_sight(token, time.time() + REFUSED_MEMORY_SECONDS):
                return
            count = self._count_refusal(remote)
            if count > REFUSED_PER_REMOTE + 1:   # random tokens are each "new": they must not flood the trail
                return
            if count > REFUSED_PER_REMOTE:
                claimed, reason = None, (f"more than {REFUSED_PER_REMOTE} refused tokens from this address within "
                                         "an hour: the rest of the hour's are not audited one by one")
            else:
                claimed = _claimed_subject(token)
            try:
                record_login(self.store, claimed or "unknown", ok=False,
                             details={"issuer": self.issuer, "reason": reason, "remote": remote,
                                      "subject_verified": False})
            except Exception as error:
                log.error("cannot audit a refused login: %s", type(error).__name__)

    def _first_sight(self, token: str, until: float) -> bool:
        now, key = time.time(), _digest(token)
        if self._seen.get(key, 0) > now:
            return False
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
            while len(self._seen) >= MAX_REMEMBERED:   # all still valid: forget the oldest remembered
                self._seen.pop(next(iter(self._seen)))
        self._seen[key] = until
        return True

    def _count_refusal(self, remote: str | None) -> int:
        """How many refused tokens `remote` has sent in its current hour, this one included."""
        now = time.time()
        if len(self._refusals) >= MAX_REMEMBERED:
            self._refusals = {r: w for r, w in self._refusals.items() if now - w[0] < REFUSED_MEMORY_SECONDS}
        start, count = self._refusals.get(remote, (now, 0))
        if now - start >= REFUSED_MEMORY_SECONDS:
            start, count = now, 0
        self._refusals[remote] = (start, count + 1)
        return count + 1

    def _last_roles(self) -> dict[str, str | None]:
        """Each subject's role at its newest login in the trail (read once, then kept up to date)."""
        if self._roles is None:
            self._roles = {e.subject: e.details.get("role") for e in self.store.audit_entries(LOGIN)}
        return self._roles


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _claimed_subject(token: str) -> str | None:
    """The `sub` a token claims, unverified (what a refused login is filed under); None when unreadable."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return str(subject)[:SUBJECT_CHARS] if subject not in (None, "") else None
