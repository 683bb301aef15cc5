"""Slack: a Block Kit message per problem, updated in place while the problem persists.

Idempotency: every message carries Slack message metadata
`{"event_type": "watchkeeper_alert", "event_payload": {"fingerprint": ...}}`. Before posting,
the channel reads the channel's recent history (conversations.history with
include_all_metadata) and, when a message for the fingerprint exists, updates it
(chat.update) instead of posting. A retry after a lost response therefore finds the message
the first attempt posted and updates it: one message per problem.

The bot token needs the scopes chat:write and channels:history (groups:history for a
private channel), and the bot must be a member of the channel.
"""

from __future__ import annotations

import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from watchkeeper.alerting.channels import content
from watchkeeper.alerting.channels.config import require_text, require_timeout, require_url
from watchkeeper.alerting.channels.errors import error_for_status, read_secret, transport_failures
from watchkeeper.alerting.record import AlertRecord, ChannelError, Delivery

EVENT_TYPE = "watchkeeper_alert"
# Slack reports these with HTTP 200 and ok=false; they are transient on Slack's side.
RETRYABLE_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":information_source:"}
HEADER_CHARS, SECTION_CHARS = 150, 3000   # Block Kit limits


class SlackChannel:
    """Posts to one Slack channel through slack_sdk's WebClient.

    Parameters
    ----------
    channel_id : the conversation id (C0123...), not its name: history needs the id.
    token_env : name of the environment variable holding the bot token (xoxb-...).
    base_url : Slack's Web API root; tests point it at a local stand-in.
    timeout : seconds per HTTP request. slack_sdk's own retry handlers are disabled
        (retry_handlers=[]): the outbox owns retries.
    lookback_days : how far back history is searched for the problem's message.
    """

    def __init__(self, channel_id: str, token_env: str = "SLACK_BOT_TOKEN", base_url: str = "https://slack.com/api/",
                 name: str = "slack", timeout: float = 5.0, lookback_days: float = 30.0) -> None:
        require_text("Slack", channel_id=channel_id, token_env=token_env, name=name)
        require_url("Slack", base_url=base_url)
        require_timeout("Slack", timeout)
        self.channel_id = channel_id
        self.token_env = token_env
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.name = name
        self.timeout = timeout
        self.lookback_days = lookback_days

    def send(self, alert: AlertRecord) -> Delivery:
        token = read_secret(self.token_env, "Slack")
        client = WebClient(token=token, base_url=self.base_url, timeout=self.timeout, retry_handlers=[])
        message = {"channel": self.channel_id, "text": f"[{alert.severity}] {alert.title}",
                   "blocks": blocks(alert), "metadata": metadata(alert)}
        with transport_failures("Slack"):
            try:
                ts = self._find(client, alert.fingerprint)
                if ts is not None:
                    client.chat_update(ts=ts, **message)
                    return Delivery(self.name, f"{self.channel_id}/{ts}", "updated")
                posted = client.chat_postMessage(**message)
                return Delivery(self.name, f"{self.channel_id}/{posted['ts']}", "created")
            except SlackApiError as exc:
                raise api_error(exc) from None

    def _find(self, client: WebClient, fingerprint: str) -> str | None:
        """The ts of this fingerprint's message within the lookback, newest first, or None."""
        oldest = f"{time.time() - self.lookback_days * 86400:.6f}"
        cursor = None
        while True:
            page = client.conversations_history(channel=self.channel_id, oldest=oldest, limit=200,
                                                include_all_metadata=True, cursor=cursor)
            for message in page.get("messages", []):
                meta = message.get("metadata") or {}
                if meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("fingerprint") == fingerprint:
                    return message["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def api_error(exc: SlackApiError) -> ChannelError:
    """Slack answers most errors with HTTP 200 and ok=false; 429 and 5xx come as HTTP statuses."""
    response = exc.response
    code = response.get("error", "") if isinstance(response.data, dict) else ""
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    retry_after = headers.get("retry-after")
    if response.status_code == 200:
        if code in RETRYABLE_ERRORS:
            return error_for_status("Slack", 429 if code == "ratelimited" else 503, retry_after, code)
        return ChannelError(f"Slack: {code or 'request failed'}", permanent=True)
    return error_for_status("Slack", response.status_code, retry_after, code)


def metadata(alert: AlertRecord) -> dict:
    return {"event_type": EVENT_TYPE,
            "event_payload": {"fingerprint": alert.fingerprint, "window": alert.window,
                              "severity": alert.severity, "occurrence": alert.occurrence}}


def blocks(alert: AlertRecord) -> list[dict]:
    """Header, facts, summary, features, metrics, link buttons and the fingerprint."""
    header = f"{SEVERITY_EMOJI[alert.severity]} {alert.title}"[:HEADER_CHARS]
    result = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}
                                       for label, value in content.headline(alert)]},
        _section(_escape(alert.summary)),
    ]
    for title, items, more in content.evidence(alert):
        lines = [f"• `{_escape(name)}` {_escape(text)}" for name, text in items] + ([f"_{more}_"] if more else [])
        result.append(_section(f"*{title}*\n" + "\n".join(lines)))
    if alert.links:
        result.append({"type": "actions", "elements": [
            {"type": "button", "action_id": f"link_{i}", "text": {"type": "plain_text", "text": label}, "url": url}
            for i, (label, url) in enumerate(content.links(alert))]})
    result.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"Watchkeeper · fingerprint `{_escape(alert.fingerprint)}`"}]})
    return result


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_CHARS]}}


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
