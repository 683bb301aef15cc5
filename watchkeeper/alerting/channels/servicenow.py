"""ServiceNow: one ITIL record per problem (Table API), with work notes while it persists.

The record's table follows its kind: `incident` for a degradation, `problem` for a cause that
keeps recurring, `change_request` for a promotion waiting for approval.

Idempotency: the record's `correlation_id` is `fingerprint_key(fingerprint)`. Each send
first queries the table for that correlation id (active or not: a recurrence after the reopen
window has a fingerprint of its own): found, it adds a work note (PATCH); not found, it
inserts the record (POST). A raised alert whose record is no longer active reopens it (state
New); a resolved notice resolves it (incident: Resolved with a close code and notes; change:
Closed, successful). `read` tells what people did: assigned or In Progress / On Hold
(acknowledged), inactive (resolved), `approval` = approved (a change request). The description and each note start
with `content.delivery_line`, so a retry after a lost "insert" answer finds the incident
it created, sees its own line in the description and does nothing. A retry after a lost
PATCH answer can add the same work note twice (reading the journal back needs rights on
sys_journal_field that an integration user seldom has); the incident is never duplicated.

Texts: `description` is plain text, and `work_notes` is a journal field whose only markup is
the `[code]...[/code]` tag, which ServiceNow renders as raw HTML (glide.ui.security.allow_codetag).
Names from data are made one line and any `[code]` or `[/code]` in them is broken with a
zero-width space, so a feature name cannot inject HTML into the incident.

Severity sets `impact` and `urgency` (severity.py); ServiceNow derives `priority` from them.

Why `requests` and not pysnc (ServiceNow's GlideRecord client): pysnc sets no request
timeout, accepts only https, and raises its errors without the HTTP response, so a 429's
Retry-After is lost. The Table API is three plain REST calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from watchkeeper.alerting.channels import content
from watchkeeper.alerting.channels.config import ca_bundle_setting, require_https, require_text, require_timeout
from watchkeeper.alerting.channels.errors import error_for_status, read_secret, transport_failures
from watchkeeper.alerting.channels.fingerprint import fingerprint_key
from watchkeeper.alerting.channels.severity import itil_fields
from watchkeeper.alerting.record import (
    CHANGE, INCIDENT, PROBLEM, RESOLVED, AlertRecord, ChannelError, Delivery, TicketState,
)

SHORT_DESCRIPTION_CHARS = 160
SYS_ID = re.compile(r"[0-9a-f]{32}")
CODE_TAG = re.compile(r"\[(/?code\])", re.IGNORECASE)
TABLES = {INCIDENT: "incident", PROBLEM: "problem", CHANGE: "change_request"}
NEW, ACKNOWLEDGED_STATES = "1", ("2", "3")   # New; In Progress, On Hold (incident states)
# What closing each record sets (problem records are closed by the people who remove the cause).
CLOSING = {INCIDENT: {"state": "6", "close_code": "Solution provided"},
           CHANGE: {"state": "3", "close_code": "successful"}}
FIELDS = "sys_id,number,description,active,state,assigned_to,approval"


def journal_escape(text: str) -> str:
    """Text that a journal field shows as text: no `[code]` tag survives (a zero-width space breaks it)."""
    return CODE_TAG.sub("[\u200b\\1", text)


class ServiceNowChannel:
    """Inserts and updates incidents with basic auth from two environment variables.

    Parameters
    ----------
    instance_url : https://<instance>.service-now.com
    user_env, password_env : names of the environment variables with the integration user's credentials.
    timeout : seconds per HTTP request (requests never retries on its own).
    assignment_group, category, caller_id : optional incident fields set on insert.
    allow_http_loopback : accept an http:// instance on a loopback host (local stand-ins); https otherwise.
    ca_bundle : a PEM file of the CA(s) to trust for this server (a private CA); default: the system's.
    """

    opens_tickets = True   # its deliveries are audited as tickets

    def __init__(self, instance_url: str, user_env: str = "SERVICENOW_USER",
                 password_env: str = "SERVICENOW_PASSWORD", name: str = "servicenow", timeout: float = 5.0,
                 assignment_group: str | None = None, category: str | None = None,
                 caller_id: str | None = None, allow_http_loopback: bool = False,
                 ca_bundle: str | None = None) -> None:
        require_https("ServiceNow", allow_http_loopback, instance_url=instance_url)
        require_text("ServiceNow", user_env=user_env, password_env=password_env, name=name)
        require_timeout("ServiceNow", timeout)
        self.instance_url = instance_url.rstrip("/")
        self.verify = ca_bundle_setting("ServiceNow", ca_bundle)
        self.user_env = user_env
        self.password_env = password_env
        self.name = name
        self.timeout = timeout
        self.optional_fields = {key: value for key, value in (("assignment_group", assignment_group),
                                                             ("category", category), ("caller_id", caller_id)) if value}

    @property
    def destination(self) -> str | None:
        """The ServiceNow instance: where every request goes (residency checks it before a send)."""
        return self.instance_url

    def send(self, alert: AlertRecord) -> Delivery:
        correlation_id = fingerprint_key(alert.fingerprint)
        with self._session() as (session, credentials):
            table = TABLES.get(alert.record, "incident")
            found = self._find(session, credentials, table, correlation_id)
            if found is None:
                if alert.event == RESOLVED:          # nothing was ever opened for it: nothing to close
                    return Delivery(self.name, correlation_id, "skipped")
                created = self._call(session, credentials, "POST", table, json=self.incident(alert, correlation_id))
                return Delivery(self.name, _incident(created, "number")["number"], "created")
            if content.already_delivered(alert, [str(found.get("description") or "")], journal_escape):
                return Delivery(self.name, found["number"], "updated")
            changes, action = {"work_notes": content.plain_text(alert, journal_escape)}, "updated"
            active = str(found.get("active")) == "true"
            if alert.event == RESOLVED and active and alert.record in CLOSING:
                changes |= CLOSING[alert.record] | {"close_notes": journal_escape(content.one_line(alert.summary))}
                action = "resolved"
            elif alert.event != RESOLVED and not active:
                changes |= {"state": NEW}
                action = "reopened"
            self._call(session, credentials, "PATCH", table, found["sys_id"], json=changes)
            return Delivery(self.name, found["number"], action)

    def read(self, fingerprint: str, record: str) -> TicketState | None:
        """The state of the problem's record, or None when it has none."""
        with self._session() as (session, credentials):
            found = self._find(session, credentials, TABLES.get(record, "incident"), fingerprint_key(fingerprint))
        if found is None:
            return None
        assigned = found.get("assigned_to")
        assigned = assigned.get("value") if isinstance(assigned, dict) else assigned
        return TicketState(found["number"], acknowledged=bool(assigned) or str(found.get("state")) in ACKNOWLEDGED_STATES,
                           resolved=str(found.get("active")) == "false",
                           approved=record == CHANGE and found.get("approval") == "approved")

    @contextmanager
    def _session(self) -> Iterator[tuple[requests.Session, tuple[str, str]]]:
        credentials = (read_secret(self.user_env, "ServiceNow"), read_secret(self.password_env, "ServiceNow"))
        with requests.Session() as session, transport_failures("ServiceNow"):
            session.auth = credentials
            session.headers["Accept"] = "application/json"
            yield session, credentials

    def _find(self, session: requests.Session, credentials: tuple[str, str], table: str,
              correlation_id: str) -> dict | None:
        query = {"sysparm_query": f"correlation_id={correlation_id}", "sysparm_fields": FIELDS, "sysparm_limit": "1"}
        found = self._call(session, credentials, "GET", table, params=query)
        if not isinstance(found, list):
            raise ChannelError("ServiceNow: unexpected answer to the record query (no list)")
        return _incident(found[0], "sys_id", "number") if found else None

    def incident(self, alert: AlertRecord, correlation_id: str) -> dict:
        itil = itil_fields(alert.severity)
        return {"short_description": journal_escape(content.one_line(alert.title))[:SHORT_DESCRIPTION_CHARS],
                "description": content.plain_text(alert, journal_escape),
                "impact": str(itil.impact), "urgency": str(itil.urgency), "correlation_id": correlation_id,
                "correlation_display": "Watchkeeper", **self.optional_fields}

    def _call(self, session: requests.Session, secrets: tuple[str, str], method: str, table: str, sys_id: str = "",
              **kwargs) -> dict | list:
        """One Table API request on `table`; its `result`, or a ChannelError."""
        url = f"{self.instance_url}/api/now/table/{table}" + (f"/{sys_id}" if sys_id else "")
        # verify per request: a Session's own would lose to $REQUESTS_CA_BUNDLE
        response = session.request(method, url, timeout=self.timeout, verify=self.verify, **kwargs)
        if response.status_code >= 400:
            raise error_for_status("ServiceNow", response.status_code, response.headers.get("Retry-After"),
                                   _error_message(response), secrets)
        try:
            return response.json()["result"]
        except (ValueError, KeyError):
            # A hibernating or maintenance instance answers 200 with an HTML page.
            raise ChannelError(f"ServiceNow: HTTP {response.status_code} without a Table API result") from None


def _incident(record: object, *keys: str) -> dict:
    """A Table API record holding `keys` as non-empty strings; else a ChannelError, never a KeyError.
    A sys_id goes into the next URL, so it must be the 32 hex digits ServiceNow issues."""
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) and record[k] for k in keys):
        raise ChannelError(f"ServiceNow: unexpected answer (an incident without {' or '.join(keys)})")
    if "sys_id" in keys and not SYS_ID.fullmatch(record["sys_id"]):
        raise ChannelError("ServiceNow: unexpected answer (a sys_id that is not 32 hex digits)")
    return record


def _error_message(response: requests.Response) -> str:
    """The Table API's {"error": {"message": ...}}; nothing when the body is not that."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""
