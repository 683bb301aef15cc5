"""Microsoft Teams: an Adaptive Card posted to a Workflows (Power Automate) webhook.

Delivery semantics. A webhook has no read API, so the channel cannot look for a card it
posted before; each successful `send` posts one card. The outbox records a delivery once
`send` returns, so a card is posted once per alert. The one gap is an ambiguous failure:
the request went out, the workflow accepted it, and the answer was lost (a read timeout).
The channel cannot tell that from a request that never arrived, so by default it reports
a retryable error and the retry may post a second card (at-least-once: a duplicate card is
better than a lost alert). What keeps that rare and harmless:
- failures before the request is sent (refused connection, connect timeout, DNS) are
  reported as "connection failed" and are always safe to retry;
- the workflow answers 202 as soon as it has queued the card, so the read timeout is only
  hit when the service is in trouble;
- every card shows the fingerprint and window, so a duplicate is recognisable as one.
Set `retry_ambiguous=False` for at-most-once instead: an ambiguous timeout is then a
permanent failure, left visible in the outbox rather than retried.

The webhook URL carries its own signature (`sig=`), so the URL itself is the secret: it is
read from an environment variable and kept out of messages, exceptions and logs. It must be
https (http only to a loopback host with `allow_http_loopback`), checked at each send since
that is when it is read.

Nothing from data is parsed by Teams: TextBlocks and FactSets read a subset of Markdown
(links, bold, lists), so every text holding a name goes into a RichTextBlock, whose TextRuns
are shown verbatim, after content.one_line has made it one visible line. Mentions need an
`msteams.entities` list, which these cards never carry.
"""

from __future__ import annotations

import logging
import os
import re

import requests

from watchkeeper.alerting.channels import content
from watchkeeper.alerting.channels.config import ca_bundle_setting, insecure_url_problem, require_text, require_timeout
from watchkeeper.alerting.channels.errors import error_for_status, read_secret, transport_failures
from watchkeeper.alerting.channels.fingerprint import fingerprint_key
from watchkeeper.alerting.record import AlertRecord, ChannelError, Delivery

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SEVERITY_COLOR = {"critical": "Attention", "warning": "Warning", "info": "Default"}
SIGNATURE = re.compile(r"(sig=)[^&\s\"']+")


class TeamsChannel:
    """Posts Adaptive Cards to one Teams webhook with `requests` (no retries of its own).

    Parameters
    ----------
    url_env : name of the environment variable holding the webhook URL.
    timeout : seconds to connect and to wait for the answer.
    retry_ambiguous : whether a request whose answer was lost may be retried (see module doc).
    allow_http_loopback : accept an http:// webhook on a loopback host (local stand-ins); https otherwise.
    ca_bundle : a PEM file of the CA(s) to trust for this server (a private CA); default: the system's.
    """

    def __init__(self, url_env: str = "TEAMS_WEBHOOK_URL", name: str = "teams", timeout: float = 5.0,
                 retry_ambiguous: bool = True, allow_http_loopback: bool = False,
                 ca_bundle: str | None = None) -> None:
        require_text("Teams", url_env=url_env, name=name)
        require_timeout("Teams", timeout)
        for flag, value in (("retry_ambiguous", retry_ambiguous), ("allow_http_loopback", allow_http_loopback)):
            if not isinstance(value, bool):
                raise ValueError(f"Teams channel: {flag} must be true or false, got {value!r}")
        self.allow_http_loopback = allow_http_loopback
        self.verify = ca_bundle_setting("Teams", ca_bundle)
        self.url_env = url_env
        self.name = name
        self.timeout = timeout
        self.retry_ambiguous = retry_ambiguous
        _hide_signatures_from_urllib3_logs()

    @property
    def destination(self) -> str | None:
        """The webhook URL from the environment (residency checks its host before a send; None when unset)."""
        return os.environ.get(self.url_env) or None

    def send(self, alert: AlertRecord) -> Delivery:
        url = read_secret(self.url_env, "Teams")
        problem = insecure_url_problem(url, self.allow_http_loopback)
        if problem:   # the URL is the secret: the message names the variable, never its value
            raise ChannelError(f"Teams: the webhook URL in {self.url_env} {problem}", permanent=True)
        with transport_failures("Teams"):
            try:
                response = requests.post(url, json=payload(alert), timeout=self.timeout, verify=self.verify)
            except requests.exceptions.ReadTimeout:
                if self.retry_ambiguous:
                    raise
                raise ChannelError("Teams: no answer in time, delivery unknown; not retried (retry_ambiguous=False)",
                                   permanent=True) from None
        if response.status_code >= 400:
            raise error_for_status("Teams", response.status_code, response.headers.get("Retry-After"),
                                   _error_code(response), secrets=(url,))
        run_id = response.headers.get("x-ms-workflow-run-id")
        return Delivery(self.name, run_id or fingerprint_key(alert.fingerprint), "posted")


def payload(alert: AlertRecord) -> dict:
    """The webhook message: one Adaptive Card attachment."""
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(alert)}]}


def card(alert: AlertRecord) -> dict:
    """An Adaptive Card 1.4 with the same content as the Slack message."""
    facts = content.headline(alert) + [("Fingerprint", content.one_line(alert.fingerprint))]
    body = [
        _rich([_run(content.one_line(alert.title), size="Large", weight="Bolder", color=SEVERITY_COLOR[alert.severity])]),
        *[_rich([_run(f"{label}: ", weight="Bolder"), _run(value)]) for label, value in facts],
        _rich([_run(content.one_line(alert.summary))]),
    ]
    for title, items, more in content.evidence(alert):
        body.append({"type": "TextBlock", "text": title, "weight": "Bolder", "spacing": "Medium"})
        body += [_rich([_run(f"{name}: ", weight="Bolder"), _run(text)]) for name, text in items]
        if more:
            body.append({"type": "TextBlock", "text": more, "isSubtle": True, "wrap": True})
    result = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
              "version": "1.4", "body": body, "msteams": {"width": "Full"}}
    if alert.links:
        result["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": url}
                             for label, url in content.links(alert)]
    return result


def _rich(inlines: list[dict], **options) -> dict:
    """A RichTextBlock: its TextRuns are shown as they are, never read as Markdown."""
    return {"type": "RichTextBlock", "inlines": inlines, **options}


def _run(text: str, **style) -> dict:
    return {"type": "TextRun", "text": text, **style}


def _error_code(response: requests.Response) -> str:
    """Workflows answer errors as {"error": {"code": ...}}; anything else gives no detail."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


class _SignatureFilter(logging.Filter):
    """Masks `sig=` values in urllib3's debug lines, which print each request's path and query."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message:
            record.msg, record.args = SIGNATURE.sub(r"\1***", message), ()
        return True


def _hide_signatures_from_urllib3_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _SignatureFilter) for f in logger.filters):
        logger.addFilter(_SignatureFilter())
