"""Slack: a Block Kit message per problem, updated in place while the problem persists.

Idempotency: every message carries Slack message metadata
`{"event_type": "watchkeeper_alert", "event_payload": {"fingerprint": ...}}`. Before posting,
the channel reads the channel's recent history (conversations.history with
include_all_metadata) and, when a message for the fingerprint exists, updates it
(chat.update) instead of posting. A retry after a lost response therefore finds the message
the first attempt posted and updates it: one message per problem.

Nothing from data is parsed by Slack: names (model, features, metrics) go into `plain_text`
objects, which Slack shows verbatim (no mrkdwn, no <!channel> or @here mentions, no links),
after content.one_line has made each one visible line. The notification `text`, which Slack
reads as mrkdwn, is escaped per Slack's rules (&, <, >) and no message asks Slack to
resolve names (`link_names`, `parse=full`).

The bot token needs the scopes chat:write and channels:history (groups:history for a
private channel), and the bot must be a member of the channel.
"""

from __future__ import annotations

import ssl
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from watchkeeper.alerting.channels import content
from watchkeeper.alerting.channels.config import ca_bundle_setting, require_https, require_text, require_timeout
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
    allow_http_loopback : accept an http:// base_url on a loopback host (local stand-ins); https otherwise.
    ca_bundle : a PEM file of the CA(s) to trust for this server (a private CA); default: the system's.
    """

    def __init__(self, channel_id: str, token_env: str = "SLACK_BOT_TOKEN", base_url: str = "https://slack.com/api/",
                 name: str = "slack", timeout: float = 5.0, lookback_days: float = 30.0,
                 allow_http_loopback: bool = False, ca_bundle: str | None = None) -> None:
        require_text("Slack", channel_id=channel_id, token_env=token_env, name=name)
        require_https("Slack", allow_http_loopback, base_url=base_url)
        require_timeout("Slack", timeout)
        if not (isinstance(lookback_days, (int, float)) and not isinstance(lookback_days, bool)
                and 0 < lookback_days <= 365):
            raise ValueError(f"Slack channel: lookback_days must be more than 0 and at most 365, got {lookback_days!r}")
        self.channel_id = channel_id
        self.token_env = token_env
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.name = name
        self.timeout = timeout
        self.lookback_days = lookback_days
        ca_bundle_setting("Slack", ca_bundle)   # checked like the other channels'; slack_sdk takes an SSLContext
        self.ca_bundle = ca_bundle

    @property
    def destination(self) -> str | None:
        """Slack's API root: where every request goes (residency checks it before a send)."""
        return self.base_url

    def send(self, alert: AlertRecord) -> Delivery:
        token = read_secret(self.token_env, "Slack")
        tls = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None
        client = WebClient(token=token, base_url=self.base_url, timeout=self.timeout, retry_handlers=[], ssl=tls)
        message = {"channel": self.channel_id, "text": _escape(content.one_line(f"[{alert.severity}] {alert.title}")),
                   "blocks": blocks(alert), "metadata": metadata(alert)}
        with transport_failures("Slack"):
            try:
                ts = self._find(client, alert.fingerprint)
                if ts is not None:
                    client.chat_update(ts=ts, **message)
                    return Delivery(self.name, f"{self.channel_id}/{ts}", "updated")
                posted = client.chat_postMessage(**message)
                if not isinstance(posted.get("ts"), str):
                    raise ChannelError("Slack: unexpected answer to chat.postMessage (no ts)")
                return Delivery(self.name, f"{self.channel_id}/{posted['ts']}", "created")
            except SlackApiError as exc:
                raise api_error(exc) from None

    def _find(self, client: WebClient, fingerprint: str) -> str | None:
        """The ts of this fingerprint's message within the lookback, newest first, or None.

        History is outside data: a message whose metadata is not the shape this channel writes
        is skipped, and a page that is not the documented shape is a ChannelError, never a crash.
        """
        oldest = f"{time.time() - self.lookback_days * 86400:.6f}"
        cursor = None
        while True:
            page = client.conversations_history(channel=self.channel_id, oldest=oldest, limit=200,
                                                include_all_metadata=True, cursor=cursor)
            messages = page.get("messages")
            if not isinstance(messages, list):
                raise ChannelError("Slack: unexpected answer to conversations.history (no message list)")
            found = next((m["ts"] for m in messages if _fingerprint_of(m) == fingerprint), None)
            if found is not None:
                return found
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not isinstance(cursor, str):
                return None


def _fingerprint_of(message: object) -> str | None:
    """The fingerprint in a message's Watchkeeper metadata (with a usable ts), else None."""
    if not isinstance(message, dict) or not isinstance(message.get("ts"), str):
        return None
    meta = message.get("metadata")
    payload = meta.get("event_payload") if isinstance(meta, dict) and meta.get("event_type") == EVENT_TYPE else None
    return payload.get("fingerprint") if isinstance(payload, dict) else None


def api_error(exc: SlackApiError) -> ChannelError:
    """Slack answers most errors with HTTP 200 and ok=false; 429 and 5xx come as HTTP statuses."""
    response = exc.response
    code = str(response.get("error") or "") if isinstance(response.data, dict) else ""
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    retry_after = headers.get("retry-after")
    if response.status_code == 200:
        if not isinstance(response.data, dict) or code.startswith("Received a response in a non-JSON format"):
            return ChannelError("Slack: unexpected answer (not JSON)")   # e.g. a proxy's page: it may recover
        if code in RETRYABLE_ERRORS:
            return error_for_status("Slack", 429 if code == "ratelimited" else 503, retry_after, code)
        return ChannelError(f"Slack: {code or 'request failed'}", permanent=True)
    return error_for_status("Slack", response.status_code, retry_after, code)


def metadata(alert: AlertRecord) -> dict:
    return {"event_type": EVENT_TYPE,
            "event_payload": {"fingerprint": alert.fingerprint, "window": alert.window,
                              "severity": alert.severity, "occurrence": alert.occurrence}}


def blocks(alert: AlertRecord) -> list[dict]:
    """Header, facts, summary, features, metrics, link buttons and the fingerprint.

    Our own labels are mrkdwn (bold); anything that holds a name from data is plain_text.
    """
    header = content.one_line(f"{SEVERITY_EMOJI[alert.severity]} {alert.title}")[:HEADER_CHARS]
    result = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": [_plain(f"{label}: {value}") for label, value in content.headline(alert)]},
        {"type": "section", "text": _plain(content.one_line(alert.summary)[:SECTION_CHARS])},
    ]
    for title, items, more in content.evidence(alert):
        lines = [f"• {name}: {text}" for name, text in items] + ([more] if more else [])
        result += [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
                   {"type": "section", "text": _plain("\n".join(lines)[:SECTION_CHARS])}]
    if alert.links:
        result.append({"type": "actions", "elements": [
            {"type": "button", "action_id": f"link_{i}", "text": _plain(label[:75]), "url": url}
            for i, (label, url) in enumerate(content.links(alert))]})
    result.append({"type": "context", "elements": [
        _plain(content.one_line(f"Watchkeeper · fingerprint {alert.fingerprint}")[:SECTION_CHARS])]})
    return result


def _plain(text: str) -> dict:
    """A text object Slack shows verbatim: no mrkdwn, mentions, links or emoji codes."""
    return {"type": "plain_text", "text": text, "emoji": False}


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
