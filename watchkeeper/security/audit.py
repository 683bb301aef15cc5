"""The audit trail: an append-only, hash-chained record of who did what, when, and to what.

Each entry holds its sequence number, the previous entry's hash and its own hash, a SHA-256 of
the canonical JSON (sorted keys, no spaces, UTF-8) of every field: actor, time, action, subject,
Dagster run id, asset partition and details. Changing any stored byte of an entry changes its
hash; deleting, inserting or reordering entries breaks the sequence or the link to the
previous hash. `verify` walks the chain and names the first entry that does not hold, so a
reviewer knows from where on the record cannot be trusted.

What the chain alone cannot show is a cut at the end (the newest entries deleted): the
database role the application runs as cannot delete audit rows on PostgreSQL
(`watchkeeper db grant`), and `watchkeeper audit verify` prints the head hash so it can be
kept elsewhere and compared.

This module only computes and checks; the rows are the store's (watchkeeper.store.audit_rows),
which appends under a lock so that concurrent writers never fork the chain.

>>> first = seal(AuditEntry(1, "2026-12-03T10:00:00.000000+00:00", "alice", "config.changed", "deploy"), GENESIS)
>>> verify([first]) is None
True
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from watchkeeper.privacy.erasure import ErasureEvent
    from watchkeeper.store import MonitoringStore

GENESIS = "0" * 64          # the "previous hash" of the first entry
ACTOR_ENV = "WATCHKEEPER_ACTOR"

# Actions, one name each, so a reviewer can filter the trail (docs/security.md lists them).
EVALUATED = "window.evaluated"
VERDICT = "verdict.recorded"
ALERT_QUEUED = "alert.queued"
ALERT_DELIVERED = "alert.delivered"
TICKET = "ticket.delivered"
RETRAINED = "model.retrained"
GATE = "model.gate"
PROMOTED = "model.promoted"
APPROVAL_REQUESTED = "model.approval_requested"
PROBLEM_ACKNOWLEDGED = "problem.acknowledged"   # someone took its ticket: escalation stops
PROBLEM_RESOLVED = "problem.resolved"           # healthy windows, a closed problem ticket, an approved change
CHAMPION_PROFILED = "model.champion_profiled"   # a new champion (promoted or approved in MLflow) is monitored
CONFIG_CHANGED = "config.changed"
RESIDENCY_REFUSED = "residency.refused"
LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
ROLE_CHANGED = "auth.role_changed"
ERASED = "data.erased"                          # `watchkeeper erase`: what went, never the subject itself


@dataclass(frozen=True)
class AuditEntry:
    """One entry; `prev_hash` and `hash` are filled in by `seal` when it is appended."""

    seq: int
    at: str                       # ISO 8601 UTC with microseconds, stored as text: hashed exactly as kept
    actor: str
    action: str
    subject: str
    run_id: str | None = None
    partition: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class Broken:
    """The first entry at which the chain does not hold, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.reason}"


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers: every field but the hash itself, as canonical JSON."""
    fields = asdict(entry)
    fields.pop("hash")
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def seal(entry: AuditEntry, prev_hash: str) -> AuditEntry:
    """`entry` linked to the previous entry's hash, with its own hash."""
    linked = replace(entry, prev_hash=prev_hash, hash="")
    return replace(linked, hash=digest(linked))


def verify(entries: Iterable[AuditEntry]) -> Broken | None:
    """None when the chain holds; else the first bad entry (in stored order).

    Entries must be numbered 1, 2, 3, ... in stored order (a gap is a deletion, a repeat or a
    step back an insertion or a reordering), each must link to the hash of the one before, and
    each hash must match its content (an edit).
    """
    prev_hash, expected = GENESIS, 1
    for entry in entries:
        if entry.seq > expected:
            return Broken(expected, f"missing (deleted): the entry after {expected - 1} is {entry.seq}")
        if entry.seq < expected:
            return Broken(entry.seq, f"out of order or repeated: found after entry {expected - 1}")
        if entry.prev_hash != prev_hash:
            return Broken(entry.seq, "does not link to the previous entry's hash (an entry before it was removed, "
                                     "inserted or reordered)")
        if digest(entry) != entry.hash:
            return Broken(entry.seq, "its content does not match its hash (edited)")
        prev_hash, expected = entry.hash, expected + 1
    return None


@dataclass(frozen=True)
class Actor:
    """Who is acting and in which Dagster run: what every entry a component appends carries."""

    name: str = field(default_factory=lambda: default_actor())
    run_id: str | None = None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def default_actor() -> str:
    """Who acts when no person is named: $WATCHKEEPER_ACTOR, else the OS user at this host."""
    named = os.environ.get(ACTOR_ENV, "").strip()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):   # no name for the uid (a container)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def config_digest(*texts: bytes) -> str:
    """A short digest of configuration contents (several files hash together, in order)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(hashlib.sha256(text).digest())
    return h.hexdigest()[:16]


def record_configuration(store: MonitoringStore, files: Mapping[str, str | os.PathLike | None],
                         actor: Actor | None = None) -> AuditEntry | None:
    """Audit the configuration in force when its digest changed since the last record: `files` names
    each configuration file (monitoring thresholds, alert policy, residency policy; None or a missing
    file counts as empty). Only digests are recorded, never contents. Returns the entry, or None."""
    texts = {name: _read(path) for name, path in files.items()}
    details = {"digest": config_digest(*texts.values()),
               "files": {name: {"path": str(path) if path else None, "digest": config_digest(texts[name])}
                         for name, path in files.items()}}
    actor = actor or Actor()
    return store.audit_if_changed(CONFIG_CHANGED, "configuration", details, actor=actor.name, run_id=actor.run_id)


def _read(path: str | os.PathLike | None) -> bytes:
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


# ------------------------------------------------------------ for the authentication front

def record_login(store: MonitoringStore, subject: str, ok: bool, actor: str | None = None,
                 details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Audit a login (or a refused one) by `subject` (the user or client id from the token).

    For the authenticating front (issue 10, item 1): call it once per session or token
    verification that matters. Never pass the token itself in `details`; pass the issuer,
    the roles granted and the remote address.
    """
    return store.audit(LOGIN if ok else LOGIN_FAILED, subject, actor=actor or subject, details=details)


def record_role_change(store: MonitoringStore, subject: str, roles: Iterable[str], actor: str,
                       previous: Iterable[str] = (), tx: sa.Connection | None = None) -> AuditEntry:
    """Audit `actor` giving `subject` the roles `roles` (replacing `previous`)."""
    return store.audit(ROLE_CHANGED, subject, actor=actor,
                       details={"roles": sorted(roles), "previous": sorted(previous)}, tx=tx)


# ------------------------------------------------------------ for erasure (watchkeeper.privacy.erasure)

def record_erasure(store: MonitoringStore, event: ErasureEvent, actor: Actor | None = None) -> AuditEntry:
    """Audit an erasure: the model, the subject's
    digest (never the subject), and how many files and rows of which tables went."""
    actor = actor or Actor()
    details = {"subject_digest": event.subject_digest, "files_deleted": event.files_deleted,
               "rows_deleted": event.rows_deleted, "tables": dict(event.tables)}
    return store.audit(ERASED, event.model, actor=actor.name, run_id=actor.run_id, details=details)
