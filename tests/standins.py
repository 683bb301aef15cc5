"""Small local HTTP servers that speak the subset of Slack, Teams, Jira and ServiceNow the channels use.

Each stand-in is a threaded `http.server` on 127.0.0.1 with an ephemeral port. It keeps
state (messages, cards, issues, incidents), records every request it receives, and can be
told to fail, so tests drive the real client libraries through the failures they meet:

    with SlackStandin(token="xoxb-test") as slack:
        slack.url             # base URL; SlackStandin.api_url is what WebClient(base_url=) takes
        slack.fail_next(1, status=429, retry_after=7)   # next request: 429 + Retry-After: 7
        slack.fail_rate(0.3, seed=1)                     # then 30% of requests fail with 503
        slack.delay(2.0, path="chat.postMessage")  # answer 2 s late, after acting on it
        slack.delay(0)
        slack.down(True)      # refuse connections (listening socket closed) ... down(False)
        slack.answer_next({"ok": True}, path="chat.postMessage")  # next such request: this answer, unprocessed
        slack.messages        # what the service holds now
        slack.requests        # every request received, failed ones included

Injected failures happen before the request is processed (the service rejected it);
`delay` happens after (the service acted, the answer came late), which is how a retry after
a lost answer meets the result of its first attempt.
"""

from __future__ import annotations

import base64
import json
import random
import ssl
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def params(self) -> dict:
        """Query string, JSON body or form body, merged (Slack's client sends any of them)."""
        merged = {key: values[-1] for key, values in self.query.items()}
        if self.headers.get("content-type", "").startswith("application/json") and self.body:
            merged.update(json.loads(self.body))
        elif self.body:
            merged.update({key: values[-1] for key, values in parse_qs(self.text).items()})
        return merged


@dataclass
class Reply:
    status: int
    body: dict | list | str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Standin:
    """Base class: server lifecycle, request log and failure injection. Subclasses implement `handle`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._fail_next: list[tuple[int, float | None]] = []
        self._answers: list[tuple[str | None, Reply]] = []
        self._fail_p, self._fail_status, self._rng = 0.0, 503, random.Random(0)
        self._delay: tuple[float, str | None, str | None] = (0.0, None, None)
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls: ssl.SSLContext | None = None

    def serve_tls(self, certfile, keyfile):
        """Speak https with this certificate (call before starting); returns self."""
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(str(certfile), str(keyfile))
        return self

    # lifecycle ---------------------------------------------------------------
    def __enter__(self):
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self._port}"

    def _start(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):     # HTTP/1.0: a connection per request, so down() refuses at once
            def _serve(self) -> None:
                standin._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args) -> None:   # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    # failure injection -------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | None = None) -> None:
        """The next `n` requests get `status` (and a Retry-After header when given) unprocessed."""
        with self._lock:
            self._fail_next += [(status, retry_after)] * n

    def answer_next(self, body: dict | list | str, status: int = 200, path: str | None = None) -> None:
        """The next request (whose path ends with `path`, when given) gets this answer, unprocessed:
        how a test serves a malformed payload (a missing key, HTML instead of JSON) to a channel."""
        with self._lock:
            self._answers.append((path, Reply(status, body)))

    def fail_rate(self, p: float, seed: int = 0, status: int = 503) -> None:
        """From now on each request fails with probability `p` (seeded, so runs repeat); 0 stops it."""
        with self._lock:
            self._fail_p, self._fail_status, self._rng = p, status, random.Random(seed)

    def delay(self, seconds: float, method: str | None = None, path: str | None = None) -> None:
        """Answer requests `seconds` late, after processing them; 0 stops it. With `method` and/or
        `path` (a suffix, e.g. "chat.postMessage") only matching requests are late."""
        with self._lock:
            self._delay = (seconds, method, path)

    def down(self, is_down: bool = True) -> None:
        """Close the listening socket (connections are refused) or reopen it on the same port."""
        if is_down:
            self._stop()
        elif self._server is None:
            self._start()

    # serving ----------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        request = Recorded(handler.command, parts.path, parse_qs(parts.query),
                           {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(request)
            failure = self._next_failure()
            answer = None if failure else self._next_answer(request)
            reply = (self._failure_reply(*failure) if failure else answer if answer is not None
                     else self._handle_safely(request))
            seconds, method, path = self._delay
        if seconds and method in (None, request.method) and (path is None or request.path.endswith(path)):
            time.sleep(seconds)
        self._write(handler, reply)

    def _next_failure(self) -> tuple[int, float | None] | None:
        if self._fail_next:
            return self._fail_next.pop(0)
        if self._fail_p and self._rng.random() < self._fail_p:
            return self._fail_status, None
        return None

    def _next_answer(self, request: Recorded) -> Reply | None:
        match = next((i for i, (path, _) in enumerate(self._answers)
                      if path is None or request.path.endswith(path)), None)
        return None if match is None else self._answers.pop(match)[1]

    def _failure_reply(self, status: int, retry_after: float | None) -> Reply:
        reply = self.error_reply(status)
        if retry_after is not None:
            reply.headers["Retry-After"] = str(int(retry_after) if float(retry_after).is_integer() else retry_after)
        return reply

    def _handle_safely(self, request: Recorded) -> Reply:
        try:
            return self.handle(request)
        except (ValueError, KeyError, TypeError) as exc:     # malformed input from the client under test
            return Reply(400, {"error": f"bad request: {exc}"})

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, (dict, list)):
            payload, content_type = json.dumps(reply.body).encode(), "application/json; charset=utf-8"
        else:
            payload, content_type = str(reply.body).encode(), "text/html; charset=utf-8"
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):     # the client gave up (timeout): nothing to do
            pass

    # subclass API -------------------------------------------------------------
    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int) -> Reply:
        """What the service answers on an injected failure; 5xx are HTML like a failing proxy's."""
        if status >= 500:
            return Reply(status, f"<html><body>{status} upstream error</body></html>")
        return Reply(status, {"error": f"HTTP {status}"})


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class SlackStandin(Standin):
    """chat.postMessage, chat.update and conversations.history (cursor paging, message metadata)."""

    HEADER_CHARS, SECTION_CHARS, MAX_FIELDS = 150, 3000, 10

    def __init__(self, token: str = "xoxb-standin", channels: tuple[str, ...] = ("C0ALERTS",)) -> None:
        super().__init__()
        self.token = token
        self.channels = set(channels)
        self._messages: list[dict] = []     # oldest first
        self._seq = 0

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def messages(self) -> list[dict]:
        with self._lock:
            return json.loads(json.dumps(self._messages))

    def post_noise(self, n: int, channel: str = "C0ALERTS") -> None:
        """`n` unrelated messages, so a history search has to page."""
        with self._lock:
            for i in range(n):
                self._store(channel, f"chatter {i}", [], None)

    def error_reply(self, status: int) -> Reply:
        if status == 429:
            return Reply(429, {"ok": False, "error": "ratelimited"})
        return super().error_reply(status)

    def handle(self, request: Recorded) -> Reply:
        method = request.path.removeprefix("/api/")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        params = request.params()
        if params.get("channel") not in self.channels:
            return Reply(200, {"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            return self._post(params)
        if method == "chat.update":
            return self._update(params)
        if method == "conversations.history":
            return self._history(params)
        return Reply(404, {"ok": False, "error": "unknown_method"})

    def _post(self, params: dict) -> Reply:
        problem = self._invalid(params)
        if problem:
            return Reply(200, {"ok": False, "error": problem})
        message = self._store(params["channel"], params.get("text", ""), params.get("blocks", []), params.get("metadata"))
        return Reply(200, {"ok": True, "channel": params["channel"], "ts": message["ts"], "message": message})

    def _update(self, params: dict) -> Reply:
        problem = self._invalid(params)
        if problem:
            return Reply(200, {"ok": False, "error": problem})
        for message in self._messages:
            if message["channel"] == params["channel"] and message["ts"] == params.get("ts"):
                message.update(text=params.get("text", ""), blocks=params.get("blocks", []), edited=True)
                if params.get("metadata"):
                    message["metadata"] = params["metadata"]
                return Reply(200, {"ok": True, "channel": params["channel"], "ts": message["ts"]})
        return Reply(200, {"ok": False, "error": "message_not_found"})

    def _history(self, params: dict) -> Reply:
        oldest = float(params.get("oldest") or 0)
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in reversed(self._messages) if m["channel"] == params["channel"] and float(m["ts"]) > oldest]
        start, limit = int(params.get("cursor") or 0), int(params.get("limit") or 100)
        page = [self._shown(m, with_metadata) for m in found[start:start + limit]]
        more = start + limit < len(found)
        return Reply(200, {"ok": True, "messages": page, "has_more": more,
                           "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

    def _store(self, channel: str, text: str, blocks: list, metadata: dict | None) -> dict:
        self._seq += 1
        message = {"type": "message", "channel": channel, "ts": f"{int(time.time())}.{self._seq:06d}",
                   "text": text, "blocks": blocks, "metadata": metadata}
        self._messages.append(message)
        return message

    @staticmethod
    def _shown(message: dict, with_metadata: bool) -> dict:
        shown = {k: v for k, v in message.items() if k != "metadata"}
        if with_metadata and message["metadata"]:
            shown["metadata"] = message["metadata"]
        return shown

    def _invalid(self, params: dict) -> str | None:
        """Slack's own checks on the Block Kit limits the channel must respect."""
        blocks = params.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not params.get("text") and not blocks:
            return "no_text"
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block.get("type") == "header" and len(text) > self.HEADER_CHARS:
                return "invalid_blocks"
            if len(text) > self.SECTION_CHARS or len(block.get("fields", [])) > self.MAX_FIELDS:
                return "invalid_blocks"
        return None


class TeamsStandin(Standin):
    """A Workflows (Power Automate) webhook: POST an Adaptive Card message, 202 Accepted."""

    PATH = "/workflows/standin/triggers/manual/paths/invoke"

    def __init__(self, sig: str = "standin-signature") -> None:
        super().__init__()
        self.sig = sig
        self._cards: list[dict] = []

    @property
    def webhook_url(self) -> str:
        """The full webhook URL, signature included: what TEAMS_WEBHOOK_URL holds."""
        return f"{self.url}{self.PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"

    @property
    def cards(self) -> list[dict]:
        """The Adaptive Cards received, in order."""
        with self._lock:
            return json.loads(json.dumps(self._cards))

    def error_reply(self, status: int) -> Reply:
        if status == 429:
            return Reply(429, {"error": {"code": "WorkflowRequestsThrottled", "message": "Rate limit is exceeded."}})
        return super().error_reply(status)

    def handle(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != self.PATH:
            return Reply(404, {"error": {"code": "WorkflowNotFound", "message": "no such workflow"}})
        if request.query.get("sig", [""])[-1] != self.sig:
            return Reply(401, {"error": {"code": "DirectApiInvalidAuthorizationSignature", "message": "bad signature"}})
        payload = json.loads(request.body)
        attachments = payload.get("attachments") or [{}]
        card = attachments[0].get("content") or {}
        if (payload.get("type") != "message" or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive"
                or card.get("type") != "AdaptiveCard"):
            return Reply(400, {"error": {"code": "InvalidRequestContent", "message": "expected an Adaptive Card message"}})
        self._cards.append(card)
        return Reply(202, "", {"x-ms-workflow-run-id": f"0858{len(self._cards):016d}"})


class JiraStandin(Standin):
    """Jira REST API v2: serverInfo, field, search (Data Center) or search/jql (Cloud), issue, comment,
    transitions (a To Do / In Progress / Approved / Done workflow).

    JQL is the subset the channel writes: `project = "K" AND labels = "L" [AND statusCategory
    != Done] [ORDER BY created DESC]`; anything else is a 400, as an unknown field would be.
    A test plays the people: `assign`, `set_status` (e.g. "In Progress", "Approved"), `resolve`.
    """

    # transition id -> (status name, status category key)
    WORKFLOW = {"11": ("To Do", "new"), "21": ("In Progress", "indeterminate"), "31": ("Approved", "indeterminate"),
                "41": ("Done", "done")}

    CLAUSES = {
        "project": re.compile(r'^project\s*=\s*"([^"]+)"$'),
        "labels": re.compile(r'^labels\s*=\s*"([^"]+)"$'),
        "open": re.compile(r"^statusCategory\s*!=\s*Done$"),
    }

    def __init__(self, token: str = "jira-standin-token", user: str | None = "bot@example.com",
                 projects: tuple[str, ...] = ("OPS",), deployment: str = "Server",
                 priorities: tuple[str, ...] = ("Highest", "High", "Medium", "Low", "Lowest")) -> None:
        super().__init__()
        self.token, self.user, self.projects = token, user, set(projects)
        self.deployment, self.priorities = deployment, set(priorities)
        self._issues: dict[str, dict] = {}

    @property
    def issues(self) -> list[dict]:
        """Issues with their `fields` (status and assignee included), `status_category` and `comments`."""
        with self._lock:
            return json.loads(json.dumps(list(self._issues.values())))

    def resolve(self, key: str) -> None:
        self.set_status(key, "Done")

    def set_status(self, key: str, name: str) -> None:
        """Move the issue to a status of the workflow (by name), as a person would."""
        category = next(c for status, c in self.WORKFLOW.values() if status == name)
        with self._lock:
            issue = self._issues[key]
            issue["status_category"] = category
            issue["fields"]["status"] = {"name": name, "statusCategory": {"key": category}}

    def assign(self, key: str, who: str = "oncall@example.com") -> None:
        with self._lock:
            self._issues[key]["fields"]["assignee"] = {"emailAddress": who, "displayName": who}

    def error_reply(self, status: int) -> Reply:
        if status < 500:
            return Reply(status, {"errorMessages": [f"stand-in failure {status}"], "errors": {}})
        return super().error_reply(status)

    def handle(self, request: Recorded) -> Reply:
        expected = _basic(self.user, self.token) if self.user else f"Bearer {self.token}"
        if request.headers.get("authorization") != expected:
            return Reply(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
        path, method = request.path.removeprefix("/rest/api/2/"), request.method
        cloud = self.deployment == "Cloud"
        if path == "serverInfo":
            version = [1001, 0, 0] if cloud else [9, 12, 0]
            return Reply(200, {"baseUrl": self.url, "version": ".".join(map(str, version)), "versionNumbers": version,
                               "deploymentType": self.deployment, "serverTitle": "Jira stand-in"})
        if path == "field":
            return Reply(200, [{"id": i, "name": i.capitalize(), "clauseNames": [i]} for i in ("summary", "labels", "priority")])
        if path in ("search", "search/jql"):
            if (path == "search") == cloud:       # Cloud retired /search; Data Center has no /search/jql
                return Reply(410 if cloud else 404, {"errorMessages": ["search endpoint not available"], "errors": {}})
            return self._search(request)
        if path == "issue" and method == "POST":
            return self._create(json.loads(request.body))
        match = re.fullmatch(r"issue/([A-Z]+-\d+)(/comment|/transitions)?", path)
        if match and match[1] in self._issues:
            issue = self._issues[match[1]]
            if match[2] == "/transitions":
                return self._transitions(issue, request)
            if not match[2]:
                return Reply(200, {"key": issue["key"], "id": issue["id"], "fields": issue["fields"]})
            if method == "POST":
                comment = {"id": str(len(issue["comments"]) + 1), "body": json.loads(request.body)["body"]}
                issue["comments"].append(comment)
                return Reply(201, comment)
            return Reply(200, {"comments": issue["comments"], "startAt": 0, "maxResults": len(issue["comments"]),
                               "total": len(issue["comments"])})
        return Reply(404, {"errorMessages": ["Issue Does Not Exist"], "errors": {}})

    def _search(self, request: Recorded) -> Reply:
        params = request.params()
        jql = re.sub(r"\s+ORDER BY created DESC$", "", params["jql"].strip())
        wanted = {}
        for clause in re.split(r"\s+AND\s+", jql):
            name = next((n for n, rx in self.CLAUSES.items() if rx.match(clause)), None)
            if name is None:
                return Reply(400, {"errorMessages": [f"Error in the JQL Query: unsupported clause {clause!r}"], "errors": {}})
            wanted[name] = self.CLAUSES[name].match(clause).groups()
        found = [issue for issue in reversed(self._issues.values())
                 if ("project" not in wanted or issue["fields"]["project"]["key"] == wanted["project"][0])
                 and ("labels" not in wanted or wanted["labels"][0] in issue["fields"]["labels"])
                 and ("open" not in wanted or issue["status_category"] != "done")]
        limit = int(params.get("maxResults") or 50)
        wanted_fields = {f for value in request.query.get("fields", []) for f in value.split(",")}
        page = [{"id": i["id"], "key": i["key"], "fields": {f: v for f, v in i["fields"].items() if f in wanted_fields}}
                for i in found[:limit]]
        return Reply(200, {"issues": page, "total": len(found), "startAt": 0, "maxResults": limit, "isLast": True})

    def _create(self, payload: dict) -> Reply:
        fields = payload["fields"]
        errors = {}
        if fields.get("project", {}).get("key") not in self.projects:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if fields.get("priority", {}).get("name") not in self.priorities:
            errors["priority"] = "Specify a valid priority"
        if any(" " in label for label in fields.get("labels", [])):
            errors["labels"] = "The label must not contain spaces."
        if errors:
            return Reply(400, {"errorMessages": [], "errors": errors})
        key = f"{fields['project']['key']}-{len(self._issues) + 1}"
        issue_id = str(10000 + len(self._issues))
        fields = {**fields, "status": {"name": "To Do", "statusCategory": {"key": "new"}}, "assignee": None}
        self._issues[key] = {"key": key, "id": issue_id, "fields": fields, "status_category": "new", "comments": []}
        return Reply(201, {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/2/issue/{issue_id}"})

    def _transitions(self, issue: dict, request: Recorded) -> Reply:
        """GET: the transitions to every other status; POST: take one, with its optional comment."""
        current = issue["fields"]["status"]["name"]
        if request.method == "GET":
            return Reply(200, {"transitions": [
                {"id": tid, "name": name, "to": {"name": name, "statusCategory": {"key": category}}}
                for tid, (name, category) in self.WORKFLOW.items() if name != current]})
        payload = json.loads(request.body)
        tid = str(payload["transition"]["id"])
        if tid not in self.WORKFLOW or self.WORKFLOW[tid][0] == current:
            return Reply(400, {"errorMessages": [f"Transition id '{tid}' is not valid for this issue."], "errors": {}})
        name, category = self.WORKFLOW[tid]
        issue["status_category"] = category
        issue["fields"]["status"] = {"name": name, "statusCategory": {"key": category}}
        for change in payload.get("update", {}).get("comment", []):
            issue["comments"].append({"id": str(len(issue["comments"]) + 1), "body": change["add"]["body"]})
        return Reply(204, "")


class ServiceNowStandin(Standin):
    """Table API on `incident`, `problem` and `change_request`: GET with an encoded query of
    `field=value` terms, POST, PATCH.

    Like the platform, it derives `priority` from impact and urgency, and `active` from the
    state (an incident Resolved/Closed/Canceled, a change Closed, a problem Closed is inactive).
    Unlike the platform (which ignores an invalid query and returns every row), it answers 400
    to a query term it does not understand, so a malformed query fails the test instead of
    matching all. A test plays the people: `assign`, `set_state`, `approve`, `resolve`.
    """

    PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3", ("2", "2"): "3",
                ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5"}
    TABLES = {"incident": ("INC", "1", ("6", "7", "8")), "problem": ("PRB", "101", ("107",)),
              "change_request": ("CHG", "-5", ("3", "4"))}      # number prefix, new state, inactive states

    def __init__(self, user: str = "watchkeeper.integration", password: str = "sn-standin-password") -> None:
        super().__init__()
        self.user, self.password = user, password
        self._tables: dict[str, dict[str, dict]] = {table: {} for table in self.TABLES}
        self._incidents = self._tables["incident"]

    def records(self, table: str) -> list[dict]:
        """Records of a table as stored; `work_notes` is the list of notes added."""
        with self._lock:
            return json.loads(json.dumps(list(self._tables[table].values())))

    @property
    def incidents(self) -> list[dict]:
        return self.records("incident")

    def _by_number(self, number: str) -> tuple[str, dict]:
        return next((table, r) for table, rows in self._tables.items() for r in rows.values() if r["number"] == number)

    def set_state(self, number: str, state: str) -> None:
        with self._lock:
            table, record = self._by_number(number)
            record.update(state=state, active="false" if state in self.TABLES[table][2] else "true")

    def resolve(self, number: str) -> None:
        table, _ = self._by_number(number)
        self.set_state(number, self.TABLES[table][2][0])

    def assign(self, number: str, user_sys_id: str = "6816f79cc0a8016401c5a33be04be441") -> None:
        with self._lock:
            self._by_number(number)[1]["assigned_to"] = {"link": f"{self.url}/api/now/table/sys_user/{user_sys_id}",
                                                         "value": user_sys_id}

    def approve(self, number: str) -> None:
        with self._lock:
            self._by_number(number)[1]["approval"] = "approved"

    def error_reply(self, status: int) -> Reply:
        if status < 500:
            return Reply(status, {"error": {"message": f"stand-in failure {status}", "detail": ""}, "status": "failure"})
        return super().error_reply(status)

    def handle(self, request: Recorded) -> Reply:
        if request.headers.get("authorization") != _basic(self.user, self.password):
            return Reply(401, {"error": {"message": "User Not Authenticated",
                                         "detail": "Required to provide Auth information"}, "status": "failure"})
        match = re.fullmatch(r"/api/now/table/([a-z_]+)(?:/([0-9a-f]{32}))?", request.path)
        if not match or match[1] not in self._tables:
            return Reply(400, {"error": {"message": "Invalid table", "detail": request.path}, "status": "failure"})
        table, sys_id = match[1], match[2]
        rows = self._tables[table]
        if request.method == "GET" and not sys_id:
            return self._query(rows, request.params())
        if request.method == "POST" and not sys_id:
            return self._insert(table, json.loads(request.body))
        if request.method == "PATCH" and sys_id in rows:
            return self._update(table, rows[sys_id], json.loads(request.body))
        return Reply(404, {"error": {"message": "No Record found", "detail": ""}, "status": "failure"})

    def _query(self, rows: dict[str, dict], params: dict) -> Reply:
        terms = [t for t in params.get("sysparm_query", "").split("^") if t]
        if any(not re.fullmatch(r"[a-z_]+=[^=!<>]*", term) for term in terms):
            return Reply(400, {"error": {"message": "Invalid query", "detail": params.get("sysparm_query")}})
        wanted = dict(term.split("=", 1) for term in terms)
        found = [i for i in rows.values() if all(i.get(k) == v for k, v in wanted.items())]
        fields = [f for f in params.get("sysparm_fields", "").split(",") if f]
        limit = int(params.get("sysparm_limit") or 10000)
        result = [{f: i.get(f, "") for f in fields} if fields else i for i in found[:limit]]
        return Reply(200, {"result": result})

    def _insert(self, table: str, record: dict) -> Reply:
        if record.get("impact") not in ("1", "2", "3") or record.get("urgency") not in ("1", "2", "3"):
            return Reply(400, {"error": {"message": "impact and urgency must be 1, 2 or 3"}, "status": "failure"})
        prefix, state, _ = self.TABLES[table]
        rows, sys_id = self._tables[table], uuid.uuid4().hex
        incident = {**record, "sys_id": sys_id, "number": f"{prefix}{len(rows) + 1:07d}", "state": state,
                    "active": "true", "priority": self.PRIORITY[(record["impact"], record["urgency"])],
                    "assigned_to": "", "approval": "requested" if table == "change_request" else "not requested",
                    "work_notes": []}
        rows[sys_id] = incident
        return Reply(201, {"result": incident})

    def _update(self, table: str, record: dict, changes: dict) -> Reply:
        note = changes.pop("work_notes", None)
        record.update(changes)
        if "state" in changes:
            record["active"] = "false" if changes["state"] in self.TABLES[table][2] else "true"
        if note:
            record["work_notes"].append(note)
        return Reply(200, {"result": record})
