"""Delivery channels: Slack, Microsoft Teams, Jira and ServiceNow, plus any a team registers.

Each channel implements watchkeeper.alerting.record.Channel: `name` and an idempotent
`send(alert) -> Delivery` that raises ChannelError on failure. Configuration (URLs, project
keys, channel ids) goes to the constructor; secrets are named by environment variable and
read at send time. The outbox owns retries; channels make one attempt per send.

A team adds its own channel without forking by declaring an entry point in the group
"watchkeeper.channels" in its package metadata (see docs/alerting_channels.md):

    [project.entry-points."watchkeeper.channels"]
    pagerduty = "acme_alerts.pagerduty:PagerDutyChannel"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from watchkeeper.alerting.channels.jira_channel import JiraChannel
from watchkeeper.alerting.channels.servicenow import ServiceNowChannel
from watchkeeper.alerting.channels.slack import SlackChannel
from watchkeeper.alerting.channels.teams import TeamsChannel
from watchkeeper.alerting.record import Channel

ENTRY_POINT_GROUP = "watchkeeper.channels"
CHANNEL_TYPES: dict[str, type] = {
    "slack": SlackChannel,
    "teams": TeamsChannel,
    "jira": JiraChannel,
    "servicenow": ServiceNowChannel,
}


def available_channel_types() -> list[str]:
    """Built-in type names, then those registered through entry points."""
    plugins = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in CHANNEL_TYPES]
    return [*CHANNEL_TYPES, *sorted(plugins)]


def load_channel(type_name: str, **config) -> Channel:
    """A channel of `type_name` built from `config`: a built-in first, else an entry point.

    Built-ins win over an entry point of the same name, so installing a package cannot
    silently replace where critical alerts go.
    """
    factory = CHANNEL_TYPES.get(type_name)
    if factory is None:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=type_name)
        if not matches:
            raise ValueError(f"unknown channel type {type_name!r} (available: {', '.join(available_channel_types())})")
        factory = next(iter(matches)).load()
    channel = factory(**config)
    if not (isinstance(getattr(channel, "name", None), str) and callable(getattr(channel, "send", None))):
        raise TypeError(f"channel type {type_name!r} built {type(channel).__name__}, which lacks `name` or `send(alert)`")
    return channel


__all__ = ["CHANNEL_TYPES", "ENTRY_POINT_GROUP", "JiraChannel", "ServiceNowChannel", "SlackChannel",
           "TeamsChannel", "available_channel_types", "load_channel"]
