"""Who hears about which alert, and when: routes, cooldown, escalation and quiet hours.

The policy lives in a YAML file checked into the repo (deploy/alerting.yaml), so a change of
who gets paged is reviewed like code. It is validated completely on load: an unknown key, an
unknown channel, a bad duration or severity is a one-line error naming the file and the path
of the bad value (``routes[1].match.min_severity: ...``), never a surprise at 3 a.m.

Decisions are pure functions of the alert, the problem's history and the time, so they are
tested without any channel or database; the outbox (watchkeeper.alerting.outbox) keeps the
history and acts on the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchkeeper.alerting.record import KINDS, SEVERITIES, AlertRecord, Channel
from watchkeeper.yaml_file import checked_mapping, load_document, shown

DURATION = re.compile(r"(?:\d+[smhdw])+")
DURATION_PART = re.compile(r"(\d+)([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A cooldown, delay or escalation longer than a year is a typo (90d for 90m), not a policy.
MAX_DURATION = timedelta(days=366)
CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
QUIET_ACTIONS = ("delay", "suppress")


class PolicyError(ValueError):
    """An invalid policy file; the message is one line: file, path of the bad value, problem."""


@dataclass(frozen=True)
class ChannelSpec:
    """A named destination: its type (slack, teams, jira, servicenow, outbox, ...) and settings.

    Secrets are never in `config`: it names the environment variables that hold them.
    """

    name: str
    type: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Which alerts a route takes; every given condition must hold (empty = any)."""

    models: tuple[str, ...] = ("*",)          # glob patterns on the model name
    teams: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)   # model tags that must all be present
    kinds: tuple[str, ...] = ()
    min_severity: str = "info"

    def matches(self, alert: AlertRecord, team: str | None, tags: Mapping[str, str]) -> bool:
        return (any(fnmatchcase(alert.model, pattern) for pattern in self.models)
                and (not self.teams or team in self.teams)
                and all(tags.get(key) == value for key, value in self.tags.items())
                and (not self.kinds or alert.kind in self.kinds)
                and _at_least(alert.severity, self.min_severity))


@dataclass(frozen=True)
class Route:
    name: str
    match: Match
    to: tuple[str, ...]
    cooldown: timedelta | None = None         # None: the policy's default cooldown


@dataclass(frozen=True)
class Escalation:
    """Widen the audience when a problem persists, or when nobody acknowledged its ticket."""

    to: tuple[str, ...]
    after_windows: int | None = None
    unacknowledged_for: timedelta | None = None
    min_severity: str = "warning"

    def triggered(self, alert: AlertRecord, occurrence: int, first_seen: datetime, acknowledged: bool,
                  now: datetime) -> bool:
        if not _at_least(alert.severity, self.min_severity):
            return False
        persisted = self.after_windows is not None and occurrence >= self.after_windows
        ignored = (self.unacknowledged_for is not None and not acknowledged
                   and now - first_seen >= self.unacknowledged_for)
        return persisted or ignored


@dataclass(frozen=True)
class QuietHours:
    """A daily period (local time; it may span midnight) in which low severities wait or are dropped.

    Critical alerts are never quieted: the loader refuses a rule that names them.
    """

    name: str
    start: time
    end: time
    timezone: ZoneInfo
    severities: tuple[str, ...]
    action: str = "delay"                     # "delay" until `end`, or "suppress"
    channels: tuple[str, ...] = ()            # empty: every channel

    def applies(self, channel: str, severity: str) -> bool:
        return severity in self.severities and (not self.channels or channel in self.channels)

    def ends_after(self, now: datetime) -> datetime | None:
        """The end (UTC) of the quiet period that contains `now` (aware), or None when `now` is not in one."""
        local = now.astimezone(self.timezone)
        t = local.time().replace(tzinfo=None)
        inside = self.start <= t < self.end if self.start < self.end else t >= self.start or t < self.end
        if not inside:
            return None
        end = datetime.combine(local.date(), self.end, tzinfo=self.timezone)
        return (end if end > local else end + timedelta(days=1)).astimezone(timezone.utc)


@dataclass(frozen=True)
class Lifecycle:
    """How a problem lives once raised (watchkeeper.problems applies it).

    resolve_after_windows: newest windows in a row without the problem that resolve it (and its
        tickets, with a comment). One healthy day after a bad week is often noise: two by default.
    reopen_within: a problem seen again within this time of its last sighting (by window dates)
        reopens its incident and ticket; later, it is a new incident with a new ticket.
    problem_after_incidents: this many incidents of one model and kind (over versions and
        episodes) raise one ITIL problem record: the cause recurs, fixing symptoms is not enough.
    """

    resolve_after_windows: int = 2
    reopen_within: timedelta = timedelta(days=7)
    problem_after_incidents: int = 3


@dataclass(frozen=True)
class Dispatch:
    """Send the alert to `channel`, not before `not_before` (None: now)."""

    channel: str
    not_before: datetime | None = None


@dataclass(frozen=True)
class Plan:
    """What the policy decided for one alert: who gets it now or later, and who is held back and why."""

    dispatches: tuple[Dispatch, ...]
    held: Mapping[str, str]                   # channel -> "cooldown until ..." | "quiet hours 'night'"


@dataclass(frozen=True)
class Policy:
    channels: Mapping[str, ChannelSpec]
    routes: tuple[Route, ...]
    cooldown: timedelta = timedelta(hours=24)
    teams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # team -> model globs it owns
    escalation_rule: Escalation | None = None
    quiet_hours: tuple[QuietHours, ...] = ()
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    def team_of(self, model: str, tags: Mapping[str, str]) -> str | None:
        """The owning team: the model's `team` tag, else the first team whose globs match its name."""
        if "team" in tags:
            return tags["team"]
        return next((team for team, globs in self.teams.items() if any(fnmatchcase(model, g) for g in globs)), None)

    def route(self, alert: AlertRecord, tags: Mapping[str, str] | None = None) -> list[str]:
        """Channel names of every route that matches, in policy order, each once."""
        return list(self._targets(alert, tags or {}))

    def escalation(self, alert: AlertRecord, occurrence: int, first_seen: datetime, acknowledged: bool,
                   now: datetime) -> list[str]:
        """Escalation channels when the problem persisted `after_windows` windows or went unacknowledged."""
        rule = self.escalation_rule
        return list(rule.to) if rule and rule.triggered(alert, occurrence, first_seen, acknowledged, now) else []

    def plan(self, alert: AlertRecord, now: datetime, first_seen: datetime, acknowledged: bool,
             last_sent: Mapping[str, datetime], tags: Mapping[str, str] | None = None, routes: bool = True) -> Plan:
        """Routes (unless `routes` is False) plus escalation, minus channels still in cooldown,
        with quiet hours applied.

        `last_sent` is when each channel last got this fingerprint: a channel that never got it
        is always told (a new problem, or one that just became critical); one that did waits for
        its cooldown, so a problem that persists for days is a reminder a day, not a flood.
        """
        targets = self._targets(alert, tags or {}) if routes else {}
        for channel in self.escalation(alert, alert.occurrence, first_seen, acknowledged, now):
            targets.setdefault(channel, self.cooldown)
        dispatches, held = [], {}
        for channel, cooldown in targets.items():
            last = last_sent.get(channel)
            if last is not None and now - last < cooldown:
                held[channel] = f"cooldown until {(last + cooldown).isoformat(timespec='minutes')}"
                continue
            rule, until = self._quiet(channel, alert.severity, now)
            if rule is None:
                dispatches.append(Dispatch(channel))
            elif rule.action == "delay":
                dispatches.append(Dispatch(channel, until))
            else:
                held[channel] = f"quiet hours {rule.name!r}"
        return Plan(tuple(dispatches), held)

    def build_channels(self) -> dict[str, Channel]:
        """A Channel per spec, by name: what a Sender delivers through."""
        return {name: build_channel(spec) for name, spec in self.channels.items()}

    def _targets(self, alert: AlertRecord, tags: Mapping[str, str]) -> dict[str, timedelta]:
        """Channel -> its cooldown (the shortest among the matching routes that name it)."""
        team = self.team_of(alert.model, tags)
        targets: dict[str, timedelta] = {}
        for route in self.routes:
            if route.match.matches(alert, team, tags):
                cooldown = route.cooldown or self.cooldown
                for channel in route.to:
                    targets[channel] = min(targets.get(channel, cooldown), cooldown)
        return targets

    def _quiet(self, channel: str, severity: str, now: datetime) -> tuple[QuietHours | None, datetime | None]:
        for rule in self.quiet_hours:
            until = rule.ends_after(now) if rule.applies(channel, severity) else None
            if until is not None:
                return rule, until
        return None, None


def build_channel(spec: ChannelSpec) -> Channel:
    """The channel implementation of `spec.type` with its config; "outbox" is the local table itself.

    Imported here, not at module load: reading a policy should not need every client library.
    Constructors read no secrets and make no calls, so the loader builds each channel once to
    check its config.
    """
    if spec.type == "outbox":
        from watchkeeper.alerting.outbox import OutboxChannel

        return OutboxChannel(spec.name, **spec.config)
    from watchkeeper.alerting.channels import load_channel

    return load_channel(spec.type, name=spec.name, **spec.config)


def _at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; any problem is a PolicyError naming the file and the bad path."""
    return load_document(path, parse_policy, PolicyError)


def parse_policy(data: Any) -> Policy:
    """A Policy from the parsed YAML document (see deploy/alerting.yaml for every key)."""
    doc = _mapping(data, "policy", {"version", "cooldown", "channels", "teams", "routes", "escalation", "quiet_hours",
                                    "lifecycle"},
                   required=("version", "channels", "routes"))
    if doc["version"] != 1:
        raise PolicyError(f"version: unsupported version {doc['version']!r} (this Watchkeeper reads version 1)")
    channels = {name: _channel(name, spec) for name, spec in _mapping(doc["channels"], "channels").items()}
    if not channels:
        raise PolicyError("channels: at least one channel is needed")
    teams = {str(team): _strings(globs, f"teams.{team}")
             for team, globs in _mapping(doc.get("teams", {}), "teams").items()}
    routes = tuple(_route(spec, f"routes[{i}]", channels, teams)
                   for i, spec in enumerate(_list(doc["routes"], "routes")))
    if not routes:
        raise PolicyError("routes: at least one route is needed")
    return Policy(
        channels=channels, routes=routes, teams=teams,
        cooldown=_duration(doc.get("cooldown", "24h"), "cooldown"),
        escalation_rule=_escalation(doc["escalation"], channels) if "escalation" in doc else None,
        quiet_hours=tuple(_quiet_hours(spec, f"quiet_hours[{i}]", channels)
                          for i, spec in enumerate(_list(doc.get("quiet_hours", []), "quiet_hours"))),
        lifecycle=_lifecycle(doc.get("lifecycle", {})),
    )


def _channel(name: Any, spec: Any) -> ChannelSpec:
    where = f"channels.{name}"
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or not spec["type"]:
        raise PolicyError(f"{where}: expected a mapping with a `type` (slack, teams, jira, servicenow, outbox, ...)")
    if "name" in spec:
        raise PolicyError(f"{where}: unknown key 'name' (a channel is named by its key)")
    channel = ChannelSpec(str(name), spec["type"], {k: v for k, v in spec.items() if k != "type"})
    try:
        build_channel(channel)
    except (TypeError, ValueError) as e:      # unknown type, unknown or missing setting
        raise PolicyError(f"{where}: {e}") from None
    return channel


def _route(spec: Any, where: str, channels: Mapping[str, ChannelSpec], teams: Mapping[str, tuple]) -> Route:
    route = _mapping(spec, where, {"name", "match", "to", "cooldown"}, required=("to",))
    return Route(
        name=str(route.get("name", where)),
        match=_match(route.get("match", {}), f"{where}.match", teams),
        to=_channel_names(route["to"], f"{where}.to", channels),
        cooldown=_duration(route["cooldown"], f"{where}.cooldown") if "cooldown" in route else None,
    )


def _match(spec: Any, where: str, teams: Mapping[str, tuple]) -> Match:
    match = _mapping(spec, where, {"model", "team", "tags", "kind", "min_severity"})
    tags = _mapping(match.get("tags", {}), f"{where}.tags")
    match_teams = _strings(match.get("team", []), f"{where}.team")
    unknown = next((team for team in match_teams if team not in teams), None)
    if unknown is not None:
        declared = ", ".join(teams) or "none"
        raise PolicyError(f"{where}.team: unknown team {unknown!r} (declared under teams: {declared})")
    return Match(
        models=_strings(match.get("model", "*"), f"{where}.model"),
        teams=match_teams,
        tags={str(k): str(v) for k, v in tags.items()},
        kinds=_choices(match.get("kind", []), f"{where}.kind", KINDS, "kind"),
        min_severity=_severity(match.get("min_severity", "info"), f"{where}.min_severity"),
    )


def _escalation(spec: Any, channels: Mapping[str, ChannelSpec]) -> Escalation:
    rule = _mapping(spec, "escalation", {"to", "after_windows", "unacknowledged_for", "min_severity"}, required=("to",))
    if "after_windows" not in rule and "unacknowledged_for" not in rule:
        raise PolicyError("escalation: give after_windows, unacknowledged_for or both")
    after = rule.get("after_windows")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 1):
        raise PolicyError(f"escalation.after_windows: expected a whole number of windows >= 1, got {after!r}")
    return Escalation(
        to=_channel_names(rule["to"], "escalation.to", channels),
        after_windows=after,
        unacknowledged_for=(_duration(rule["unacknowledged_for"], "escalation.unacknowledged_for")
                            if "unacknowledged_for" in rule else None),
        min_severity=_severity(rule.get("min_severity", "warning"), "escalation.min_severity"),
    )


def _lifecycle(spec: Any) -> Lifecycle:
    rule = _mapping(spec, "lifecycle", {"resolve_after_windows", "reopen_within", "problem_after_incidents"})
    default = Lifecycle()
    return Lifecycle(
        resolve_after_windows=_count(rule.get("resolve_after_windows", default.resolve_after_windows),
                                     "lifecycle.resolve_after_windows"),
        reopen_within=(_duration(rule["reopen_within"], "lifecycle.reopen_within") if "reopen_within" in rule
                       else default.reopen_within),
        problem_after_incidents=_count(rule.get("problem_after_incidents", default.problem_after_incidents),
                                       "lifecycle.problem_after_incidents"),
    )


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PolicyError(f"{where}: expected a whole number >= 1, got {shown(value)}")
    return value


def _quiet_hours(spec: Any, where: str, channels: Mapping[str, ChannelSpec]) -> QuietHours:
    rule = _mapping(spec, where, {"name", "start", "end", "timezone", "severities", "action", "channels"},
                    required=("start", "end", "timezone", "severities"))
    severities = _choices(rule["severities"], f"{where}.severities", SEVERITIES, "severity")
    if "critical" in severities:
        raise PolicyError(f"{where}.severities: critical alerts are never quieted")
    try:
        zone = ZoneInfo(str(rule["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{where}.timezone: unknown time zone {rule['timezone']!r} "
                          "(an IANA name like Europe/Berlin)") from None
    start, end = _clock(rule["start"], f"{where}.start"), _clock(rule["end"], f"{where}.end")
    if start == end:
        raise PolicyError(f"{where}: start and end are both {rule['start']} (an empty or all-day period)")
    return QuietHours(
        name=str(rule.get("name", where)), start=start, end=end, timezone=zone, severities=severities,
        action=_choices(rule.get("action", "delay"), f"{where}.action", QUIET_ACTIONS, "action")[0],
        channels=_channel_names(rule["channels"], f"{where}.channels", channels) if "channels" in rule else (),
    )


def _mapping(value: Any, where: str, allowed: set[str] | None = None, required: tuple[str, ...] = ()) -> dict:
    return checked_mapping(value, where, PolicyError, allowed, required)


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected a list, got {shown(value)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple."""
    items = [value] if isinstance(value, str) else _list(value, where)
    bad = next((item for item in items if not isinstance(item, str) or not item), None)
    if bad is not None:
        raise PolicyError(f"{where}: expected non-empty strings, got {shown(bad)}")
    return tuple(items)


def _choices(value: Any, where: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = _strings(value, where)
    bad = next((item for item in items if item not in allowed), None)
    if bad is not None:
        raise PolicyError(f"{where}: unknown {what} {bad!r} (one of {', '.join(allowed)})")
    return items


def _severity(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: expected one severity, got {shown(value)}")
    return _choices(value, where, SEVERITIES, "severity")[0]


def _channel_names(value: Any, where: str, channels: Mapping[str, ChannelSpec]) -> tuple[str, ...]:
    names = _strings(value, where)
    unknown = next((name for name in names if name not in channels), None)
    if unknown is not None:
        raise PolicyError(f"{where}: unknown channel {unknown!r} (declared: {', '.join(channels)})")
    return names


def _duration(value: Any, where: str) -> timedelta:
    """'90s', '30m', '2h', '1d', '1w' or a sum like '1h30m'."""
    if not isinstance(value, str) or not DURATION.fullmatch(value.strip()):
        raise PolicyError(f"{where}: bad duration {value!r} (use e.g. 30m, 2h, 1d or 1h30m)")
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in DURATION_PART.findall(value))  # exact: Python ints
    if not seconds:
        raise PolicyError(f"{where}: duration {value!r} is zero")
    if seconds > MAX_DURATION.total_seconds():
        raise PolicyError(f"{where}: duration {value!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def _clock(value: Any, where: str) -> time:
    match = CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PolicyError(f"{where}: bad time of day {value!r} "
                          "(use 'HH:MM' in quotes: YAML reads 22:00 unquoted as a number)")
    return time(int(match[1]), int(match[2]))

