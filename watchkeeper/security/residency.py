"""Data residency as policy: which locations each class of data may be written or sent to.

A policy file (deploy/residency.yaml; its path in $WATCHKEEPER_RESIDENCY_POLICY) maps
destinations to named locations by host or URI glob, and names the locations allowed per data
class:

    version: 1
    locations:                         # first match wins; a destination matching none is "unknown"
      uae-north: {hosts: ["*.uaenorth.cloudapp.azure.com"], uris: ["s3://acme-uae-*"]}
      on-premises: {uris: ["file:*", "sqlite:*"], hosts: [localhost, 127.0.0.1]}
    allowed:
      rows: [uae-north, on-premises]             # production windows, reference data, MLflow artifacts
      aggregates: [uae-north, on-premises]       # the monitoring store, MLflow tracking
      alerts: [uae-north, on-premises]           # each alert channel

Every writer and sender asks `check` before its first byte leaves: the monitoring store when it
is opened, the window storage before a window is written, MLflow before a tracking client is
made and before artifacts are logged, each alert channel before a send. A violation is a
ResidencyError (one line that never shows credentials); callers that hold a store audit it
(`audit_refusal`), and `watchkeeper config validate` lists every violation of a configuration.
Without a policy file nothing is checked (the embedded demo), which `config validate` says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from watchkeeper.security.audit import RESIDENCY_REFUSED, Actor
from watchkeeper.yaml_file import checked_mapping, load_document

if TYPE_CHECKING:
    import sqlalchemy as sa

    from watchkeeper.alerting.policy import Policy

    from watchkeeper.store import MonitoringStore

ROWS, AGGREGATES, ALERTS = "rows", "aggregates", "alerts"
DATA_CLASSES = (ROWS, AGGREGATES, ALERTS)
POLICY_ENV = "WATCHKEEPER_RESIDENCY_POLICY"
UNKNOWN = "unknown"
_cache: dict[str, Any] = {}   # the active policy, by (path, modification time)


class ResidencyError(PermissionError):
    """A write or send refused by the residency policy, or an invalid policy file (one line)."""

    def __init__(self, message: str, data_class: str | None = None, what: str | None = None,
                 destination: str | None = None, location: str | None = None) -> None:
        super().__init__(message)
        self.data_class, self.what, self.destination, self.location = data_class, what, destination, location


@dataclass(frozen=True)
class Location:
    name: str
    hosts: tuple[str, ...] = ()     # globs on the host name (lower case)
    uris: tuple[str, ...] = ()      # globs on the whole URI, credentials removed

    def matches(self, uri: str, host: str | None) -> bool:
        return (host is not None and any(fnmatchcase(host, g.lower()) for g in self.hosts)) or \
            any(fnmatchcase(uri, g) for g in self.uris)


@dataclass(frozen=True)
class ResidencyPolicy:
    locations: tuple[Location, ...]
    allowed: Mapping[str, tuple[str, ...]]

    def locate(self, destination: str | Path) -> str:
        """The location a destination is in: the first rule that matches it, else "unknown"."""
        uri = as_uri(destination)
        host = urlsplit(uri).hostname
        return next((loc.name for loc in self.locations if loc.matches(uri, host)), UNKNOWN)

    def problem(self, data_class: str, what: str, destination: str | Path | None) -> ResidencyError | None:
        """Why `data_class` may not go to `destination` (for `what`, e.g. "channel slack"), or None."""
        if destination is None or not str(destination).strip():
            return ResidencyError(f"residency: {data_class} for {what}: refused, its destination is not known "
                                  "(a residency policy needs to know where every byte goes)", data_class, what)
        location, shown = self.locate(destination), shown_uri(destination)
        allowed = self.allowed.get(data_class, ())
        if location in allowed:
            return None
        return ResidencyError(
            f"residency: {data_class} for {what} may not go to {shown} (location {location}; allowed for "
            f"{data_class}: {', '.join(allowed) or 'none'})", data_class, what, shown, location)

    def check(self, data_class: str, what: str, destination: str | Path | None) -> None:
        error = self.problem(data_class, what, destination)
        if error is not None:
            raise error


def as_uri(destination: str | Path) -> str:
    """A destination as a URI without credentials: a plain path becomes file:///absolute/path."""
    text = str(destination)
    parts = urlsplit(text)
    if not parts.scheme or len(parts.scheme) == 1:   # a path (a Windows drive letter is one letter)
        return Path(text).expanduser().resolve().as_uri()
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def shown_uri(destination: str | Path) -> str:
    """What an error may show of a destination: scheme and host, or the path of a local file; never
    credentials, a query or a webhook's path (a webhook URL is itself a secret)."""
    uri = as_uri(destination)
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else uri


def load_residency(path: str | Path) -> ResidencyPolicy:
    """Read and validate a policy file strictly; ResidencyError names the file and the bad path."""
    return load_document(path, parse_residency, ResidencyError)


def parse_residency(data: Any) -> ResidencyPolicy:
    doc = _mapping(data, "policy", {"version", "locations", "allowed"}, required=("version", "locations", "allowed"))
    if doc["version"] != 1:
        raise ResidencyError(f"version: unsupported version {doc['version']!r} (this Watchkeeper reads version 1)")
    locations = []
    for name, spec in _mapping(doc["locations"], "locations").items():
        where = f"locations.{name}"
        if not isinstance(name, str) or not name.strip() or name == UNKNOWN:
            raise ResidencyError(f"{where}: a location name must be a non-empty string other than {UNKNOWN!r}")
        rule = _mapping(spec, where, {"hosts", "uris"})
        location = Location(name, _globs(rule.get("hosts", []), f"{where}.hosts"),
                            _globs(rule.get("uris", []), f"{where}.uris"))
        if not location.hosts and not location.uris:
            raise ResidencyError(f"{where}: give hosts, uris or both")
        locations.append(location)
    names = {loc.name for loc in locations}
    allowed = {}
    for data_class, places in _mapping(doc["allowed"], "allowed", set(DATA_CLASSES), required=DATA_CLASSES).items():
        listed = _globs(places, f"allowed.{data_class}")
        unknown = next((p for p in listed if p not in names), None)
        if unknown is not None:
            raise ResidencyError(f"allowed.{data_class}: unknown location {unknown!r} (declared: {', '.join(names)})")
        allowed[data_class] = listed
    return ResidencyPolicy(tuple(locations), allowed)


def active_policy() -> ResidencyPolicy | None:
    """The policy named by $WATCHKEEPER_RESIDENCY_POLICY (re-read when the file changes), or None."""
    path = os.environ.get(POLICY_ENV, "").strip()
    if not path:
        return None
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as error:
        raise ResidencyError(f"{POLICY_ENV}: {path}: cannot read: {error.strerror}") from None
    if _cache.get("key") != (path, stamp):
        _cache.update(key=(path, stamp), policy=load_residency(path))
    return _cache["policy"]



def check(data_class: str, what: str, destination: str | Path | None) -> None:
    """Refuse (ResidencyError) when the active policy does not allow it; no policy allows everything."""
    policy = active_policy()
    if policy is not None:
        policy.check(data_class, what, destination)


def configured_destinations(alerting: Policy, store: str | None = None, data_dir: str | None = None,
                            mlflow_uri: str | None = None, mlflow_artifacts: str | None = None,
                            ) -> list[tuple[str, str, str | None]]:
    """(data class, what, destination) of every place a configuration writes or sends to; the
    ones not configured are left out, and a channel whose address is not known (a webhook URL
    not in the environment) is listed with None, which the policy refuses."""
    found = [(c, what, d) for c, what, d in ((AGGREGATES, "the monitoring store", store),
                                             (ROWS, "window storage", data_dir),
                                             (AGGREGATES, "MLflow tracking", mlflow_uri),
                                             (ROWS, "MLflow artifacts", mlflow_artifacts)) if d]
    for name, channel in alerting.build_channels().items():
        if not getattr(channel, "local", False):
            found.append((ALERTS, f"channel {name}", getattr(channel, "destination", None)))
    return found


def audit_refusal(store: MonitoringStore, error: ResidencyError, actor: Actor | None = None,
                  partition: str | None = None, tx: sa.Connection | None = None) -> None:
    """Record a refusal in the audit trail (destination shown without credentials)."""
    actor = actor or Actor()
    store.audit(RESIDENCY_REFUSED, error.what or "configuration", actor.name, actor.run_id, partition, tx=tx,
                details={"data_class": error.data_class, "destination": error.destination,
                         "location": error.location, "error": str(error)})


def _mapping(value: Any, where: str, allowed: set[str] | None = None, required: tuple[str, ...] = ()) -> dict:
    return checked_mapping(value, where, ResidencyError, allowed, required)


def _globs(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ResidencyError(f"{where}: expected a list of non-empty strings, got {value!r}"[:200])
    return tuple(items)
