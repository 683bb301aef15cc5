"""Jira: one issue per problem, commented on while the problem persists.

Idempotency: the issue carries the label `fingerprint_key(fingerprint)` (Jira labels cannot
hold ':'). Each send first searches with JQL for the project's newest issue with that label:
found, it adds a comment; not found, it creates the issue. So a retry after a lost "create"
answer comments on the issue the first attempt created. The description and every comment
start with `content.delivery_line` (fingerprint, event, window, occurrence, severity); when
the issue already holds that line the send is a no-op, so neither a retried create nor a
retried comment writes the same alert twice.

Lifecycle (watchkeeper.problems decides, the channel carries it out):
- a raised alert whose issue is Done reopens it (a transition out of the Done category, with
  the alert as its comment): the problem came back within its reopen window. A recurrence
  after that window is a new incident with a new fingerprint, so it gets a new issue;
- a resolved notice comments on the issue and moves it to Done;
- the ITIL record picks the issue type: `issue_type` for incidents, `problem_issue_type` for a
  recurring cause, `change_issue_type` for a promotion waiting for approval;
- `read` tells what people did: assigned or in progress (acknowledged), Done (resolved), and
  for a change, a status named in `approved_statuses` (approved).

Texts are Jira wiki markup, so every name from data is escaped the way Atlassian's own
renderer reads escapes (a backslash before each of ``! [ ] ^ ~ + ? % { } ( ) * _ - | @``,
and a backslash itself as ``&#92;``, since two backslashes are a line break): a feature
named ``[~admin]`` or ``{html}`` is shown, never a mention or a macro. The summary is a
plain-text field and gets the name on one line only.

Priority comes from severity.py (ITIL priority -> Jira's default priority names; pass
`priority_names` for a scheme with other names). Authentication: Jira Cloud takes the
account e-mail (`user`) and an API token; Jira Data Center takes a personal access token
alone (leave `user` unset). Only the token is secret and it comes from `token_env`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from jira import JIRA, JIRAError

from watchkeeper.alerting.channels import content
from watchkeeper.alerting.channels.config import ca_bundle_setting, require_https, require_text, require_timeout
from watchkeeper.alerting.channels.errors import error_for_status, read_secret, transport_failures
from watchkeeper.alerting.channels.fingerprint import fingerprint_key
from watchkeeper.alerting.channels.severity import JIRA_PRIORITY_NAMES, PRIORITY_LABELS, itil_fields
from watchkeeper.alerting.record import CHANGE, PROBLEM, RESOLVED, AlertRecord, ChannelError, Delivery, TicketState

SUMMARY_CHARS = 255
PROJECT_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# The characters com.atlassian.renderer's BackslashEscapeRendererComponent un-escapes.
WIKI_SPECIAL = frozenset("![]^~+?%{}()*_-|@")
DONE, IN_PROGRESS = "done", "indeterminate"   # Jira's status category keys (the third is "new")


def wiki_escape(text: str) -> str:
    """Text shown literally in Jira wiki markup."""
    return "".join("&#92;" if c == "\\" else f"\\{c}" if c in WIKI_SPECIAL else c for c in text)


class JiraChannel:
    """Creates and comments on Jira issues through the `jira` client (its retries disabled).

    Parameters
    ----------
    server : the Jira base URL.
    project : project key new issues go to.
    issue_type : issue type name for new issues.
    user : account e-mail for Jira Cloud basic auth; None for a Data Center bearer token.
    token_env : name of the environment variable holding the API token or PAT.
    timeout : seconds per HTTP request.
    priority_names : ITIL priority (1..5) -> Jira priority name.
    allow_http_loopback : accept an http:// server on a loopback host (local stand-ins); https otherwise.
    problem_issue_type, change_issue_type : issue types of problem records and change requests.
    approved_statuses : status names that mean a change request was approved.
    ca_bundle : a PEM file of the CA(s) to trust for this server (a private CA); default: the system's.
    """

    opens_tickets = True   # its deliveries are audited as tickets

    def __init__(self, server: str, project: str, issue_type: str = "Bug", user: str | None = None,
                 token_env: str = "JIRA_API_TOKEN", name: str = "jira", timeout: float = 5.0,
                 priority_names: Mapping[int, str] = JIRA_PRIORITY_NAMES, allow_http_loopback: bool = False,
                 problem_issue_type: str = "Problem", change_issue_type: str = "Change",
                 approved_statuses: tuple[str, ...] | list[str] = ("Approved",), ca_bundle: str | None = None) -> None:
        require_https("Jira", allow_http_loopback, server=server)
        require_text("Jira", project=project, issue_type=issue_type, token_env=token_env, name=name,
                     problem_issue_type=problem_issue_type, change_issue_type=change_issue_type)
        require_text("Jira", **{f"approved_statuses[{i}]": status for i, status in enumerate(approved_statuses)})
        if not PROJECT_KEY.fullmatch(project):   # it is quoted into JQL: no quote may end the string
            raise ValueError(f"Jira channel: project must be a project key like OPS, got {project!r}")
        require_timeout("Jira", timeout)
        if set(priority_names) != set(PRIORITY_LABELS):
            raise ValueError(f"Jira channel: priority_names needs a name for each ITIL priority {sorted(PRIORITY_LABELS)}")
        self.verify = ca_bundle_setting("Jira", ca_bundle)
        self.server = server
        self.project = project
        self.issue_types = {PROBLEM: problem_issue_type, CHANGE: change_issue_type}
        self.issue_type = issue_type
        self.approved_statuses = frozenset(approved_statuses)
        self.user = user
        self.token_env = token_env
        self.name = name
        self.timeout = timeout
        self.priority_names = dict(priority_names)

    @property
    def destination(self) -> str | None:
        """The Jira server: where every request goes (residency checks it before a send)."""
        return self.server

    def send(self, alert: AlertRecord) -> Delivery:
        return self._session(lambda client: self._deliver(client, alert, fingerprint_key(alert.fingerprint)))

    def read(self, fingerprint: str, record: str) -> TicketState | None:
        """The state of the problem's issue, or None when it has none."""
        def state(client: JIRA) -> TicketState | None:
            found = self._search(client, fingerprint_key(fingerprint), "status,assignee")
            if found is None:
                return None
            fields = found["fields"]
            status = fields.get("status") if isinstance(fields.get("status"), dict) else {}
            category = (status.get("statusCategory") or {}).get("key")
            return TicketState(found["key"], acknowledged=bool(fields.get("assignee")) or category == IN_PROGRESS,
                               resolved=category == DONE,
                               approved=record == CHANGE and status.get("name") in self.approved_statuses)
        return self._session(state)

    def _session(self, work):
        """Run `work(client)` with a client made for it, every failure a ChannelError."""
        token = read_secret(self.token_env, "Jira")
        secrets = (token, base64.b64encode(f"{self.user}:{token}".encode()).decode())
        with transport_failures("Jira"):
            try:
                client = self._connect(token)
                try:
                    return work(client)
                finally:
                    client.close()
            except JIRAError as exc:
                raise api_error(exc, secrets) from None

    def _connect(self, token: str) -> JIRA:
        """A client per send: the token is read at send time. Construction calls serverInfo,
        which tells Cloud (search/jql) from Data Center (search)."""
        auth = {"basic_auth": (self.user, token)} if self.user else {"token_auth": token}
        try:
            return JIRA(server=self.server, timeout=self.timeout, max_retries=0, options={"check_update": False, "verify": self.verify},
                        **auth)
        except (KeyError, TypeError, AttributeError) as exc:   # the client parsing a serverInfo it did not expect
            raise ChannelError(f"Jira: unexpected answer to serverInfo (no {exc})") from None

    def _deliver(self, client: JIRA, alert: AlertRecord, label: str) -> Delivery:
        found = self._search(client, label, "description,status")
        if found is None:
            if alert.event == RESOLVED:      # nothing was ever opened for it: nothing to close
                return Delivery(self.name, label, "skipped")
            issue = client.create_issue(fields=self.fields(alert, label), prefetch=False)
            return Delivery(self.name, issue.key, "created")
        key, fields = found["key"], found["fields"]
        description = fields.get("description") if isinstance(fields.get("description"), str) else ""
        texts = [description] + [str(getattr(c, "body", "") or "") for c in client.comments(key)]
        if content.already_delivered(alert, texts, wiki_escape):
            return Delivery(self.name, key, "updated")
        text = content.plain_text(alert, wiki_escape)
        done = ((fields.get("status") or {}).get("statusCategory") or {}).get("key") == DONE
        wanted = None if done == (alert.event == RESOLVED) else alert.event == RESOLVED
        transition = _transition(client.transitions(key), to_done=wanted) if wanted is not None else None
        if transition is None:
            client.add_comment(key, text)
            return Delivery(self.name, key, "updated")
        client.transition_issue(key, transition, comment=text)
        return Delivery(self.name, key, "resolved" if wanted else "reopened")

    def _search(self, client: JIRA, label: str, fields: str) -> dict | None:
        """The project's newest issue with the label, whatever its status (episodes have their own)."""
        jql = f'project = "{self.project}" AND labels = "{label}" ORDER BY created DESC'
        return _first_issue(client.search_issues(jql, maxResults=1, fields=fields, json_result=True))

    def fields(self, alert: AlertRecord, label: str) -> dict:
        """The create-issue fields; project and issue type by key/name so no lookup call is made."""
        return {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_types.get(alert.record, self.issue_type)},
            "summary": content.one_line(alert.title)[:SUMMARY_CHARS],
            "description": content.plain_text(alert, wiki_escape),
            "labels": ["watchkeeper", label],
            "priority": {"name": self.priority_names[itil_fields(alert.severity).priority]},
        }


def _first_issue(result: object) -> dict | None:
    """{"key", "fields"} of the first issue of a search answer, None when there is none;
    an answer that is not the documented shape is a ChannelError, never a KeyError."""
    issues = result.get("issues") if isinstance(result, dict) else None
    if not isinstance(issues, list):
        raise ChannelError("Jira: unexpected answer to search (no issue list)")
    if not issues:
        return None
    first = issues[0] if isinstance(issues[0], dict) else {}
    if not isinstance(first.get("key"), str):
        raise ChannelError("Jira: unexpected answer to search (an issue without a key)")
    return {"key": first["key"], "fields": first["fields"] if isinstance(first.get("fields"), dict) else {}}


def _transition(transitions: object, to_done: bool) -> str | None:
    """The id of a transition into the Done category, or out of it (to a "new" status when there
    is one: a reopened problem is not acknowledged yet); None when the workflow offers none, in
    which case the channel comments only."""
    found: dict[str, str] = {}
    for transition in transitions if isinstance(transitions, list) else []:
        target = transition.get("to") if isinstance(transition, dict) else None
        category = ((target or {}).get("statusCategory") or {}).get("key") if isinstance(target, dict) else None
        if isinstance(category, str) and str(transition.get("id", "")).isdigit():
            found.setdefault(category, str(transition["id"]))
    if to_done:
        return found.get(DONE)
    return found.get("new") or next((tid for category, tid in found.items() if category != DONE), None)


def api_error(exc: JIRAError, secrets: tuple[str, ...]) -> ChannelError:
    """From the status and Jira's own error text; str(JIRAError) prints request headers, so not that."""
    if exc.status_code is None:
        return ChannelError("Jira: unexpected answer (no HTTP status)")
    retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
    return error_for_status("Jira", exc.status_code, retry_after, str(exc.text or ""), secrets)
