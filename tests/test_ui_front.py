"""`watchkeeper ui`: a real dagster-webserver behind the authenticating front, over TLS,
with tokens from a stand-in issuer whose JWKS the front fetches over https.

One small code location (one asset, one job) keeps the webserver quick to start; the front
and Dagster are the real processes `watchkeeper ui` starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import requests
import websockets
from websockets.sync.client import connect

from conftest import ROOT, WATCHKEEPER, free_port
from identity import Issuer, Pki
from watchkeeper.store import MonitoringStore
from test_prometheus import stop, wait_for

DEFINITIONS = '''
import dagster as dg

@dg.asset
def tiny_asset() -> int:
    return 1

tiny_job = dg.define_asset_job("tiny_job", selection=[tiny_asset])
defs = dg.Definitions(assets=[tiny_asset], jobs=[tiny_job])
'''
ASSETS = "{ assetNodes { assetKey { path } } }"
LAUNCH = """mutation Launch($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
SELECTOR = {"repositoryLocationName": "tiny", "repositoryName": "__repository__", "jobName": "tiny_job"}
WIPE = 'mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: ["tiny_asset"]}}]) { __typename } }'


class Front:
    def __init__(self, url: str, idp: Issuer, pki: Pki, process: subprocess.Popen, log: Path, store_url: str) -> None:
        self.url, self.idp, self.pki, self.process, self.log, self.store_url = url, idp, pki, process, log, store_url
        self.tokens: list[str] = []   # every token sent, to check none reached a log

    def token(self, *roles: str, **claims) -> str:
        token = self.idp.token(roles=list(roles), **claims)
        self.tokens.append(token)
        return token

    def graphql(self, query: str, token: str | None = None, variables: dict | None = None,
                **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                             headers=headers, verify=str(self.pki.ca), timeout=60, **kwargs)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    (folder / "defs.py").write_text(textwrap.dedent(DEFINITIONS))
    (folder / "workspace.yaml").write_text("load_from:\n  - python_file:\n      relative_path: defs.py\n"
                                           "      location_name: tiny\n")
    (folder / "home").mkdir()
    pki = Pki(folder / "pki")
    port, store_url = free_port(), f"sqlite:///{folder / 'monitoring.db'}"
    MonitoringStore(store_url)   # a deployment's store, where the front audits logins
    with Issuer(pki) as idp:
        env = {**os.environ, **idp.env, "DAGSTER_HOME": str(folder / "home"), "PYTHONPATH": str(ROOT),
               "DAGSTER_DISABLE_TELEMETRY": "1"}
        log = folder / "front.log"   # a file, not a pipe: Dagster's children would hold a pipe open
        with log.open("w") as output:
            process = subprocess.Popen([*WATCHKEEPER, "ui", "--port", str(port), "--workspace",
                                        str(folder / "workspace.yaml"), "--store-url", store_url,
                                        "--tls-cert", str(pki.cert),
                                        "--tls-key", str(pki.key)], cwd=folder, env=env, stdout=output,
                                       stderr=subprocess.STDOUT)
        served = Front(f"https://127.0.0.1:{port}", idp, pki, process, log, store_url)
        viewer = served.token("viewer")

        def loaded() -> bool:
            if process.poll() is not None:
                pytest.fail(f"watchkeeper ui exited with {process.returncode}: {log.read_text()[-2000:]}")
            answer = served.graphql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }",
                                    viewer)
            return answer.ok and "LOADED" in answer.text

        try:
            wait_for(loaded, "the UI front and Dagster behind it", deadline=180)
            yield served
        finally:
            stop(process)


def asset_names(answer: requests.Response) -> list[str]:
    return [node["assetKey"]["path"][-1] for node in answer.json()["data"]["assetNodes"]]


def test_without_a_valid_token_everything_is_401_and_no_data(front):
    idp = front.idp
    bad = [None, "garbage", front.token("admin", lifetime=-300), front.token("admin", iss="https://evil.example"),
           front.token("admin", aud="someone-else")]
    for token in bad:
        answer = front.graphql(ASSETS, token)
        assert answer.status_code == 401, (token, answer.text)
        assert "tiny_asset" not in answer.text and "data" not in answer.json()
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    page = requests.get(f"{front.url}/assets", verify=str(front.pki.ca), timeout=30)
    assert page.status_code == 401 and "<html" not in page.text.lower()
    assert idp.fetches >= 1   # the keys really came from the issuer's JWKS


def test_a_viewer_reads_assets_but_cannot_launch_or_wipe(front):
    viewer = front.token("viewer")
    answer = front.graphql(ASSETS, viewer)
    assert answer.status_code == 200 and asset_names(answer) == ["tiny_asset"]
    refused = front.graphql(LAUNCH, viewer, {"p": {"selector": SELECTOR, "runConfigData": {}}})
    assert refused.status_code == 403 and "operator" in refused.json()["error"]
    assert front.graphql(WIPE, viewer).status_code == 403
    assert front.graphql(ASSETS, front.token("offline_access")).status_code == 403   # signed in, no role


def test_an_operator_launches_a_run_but_an_admin_action_needs_admin(front):
    operator = front.token("operator")
    launched = front.graphql(LAUNCH, operator, {"p": {"selector": SELECTOR, "runConfigData": {}}})
    assert launched.status_code == 200, launched.text
    result = launched.json()["data"]["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    runs = front.graphql("{ runsOrError { ... on Runs { results { runId } } } }", operator).json()
    assert result["run"]["runId"] in [r["runId"] for r in runs["data"]["runsOrError"]["results"]]
    assert front.graphql(WIPE, operator).status_code == 403
    assert front.graphql(WIPE, front.token("admin")).status_code == 200


def test_a_session_cookie_holds_the_token_for_browsers(front):
    session, ca = requests.Session(), str(front.pki.ca)   # verify per request: REQUESTS_CA_BUNDLE beats Session.verify
    started = session.post(f"{front.url}/auth/session", headers={"Authorization": f"Bearer {front.token('viewer')}"},
                           verify=ca, timeout=30)
    assert started.status_code == 204
    cookie = started.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    answer = session.post(f"{front.url}/graphql", json={"query": ASSETS}, verify=ca, timeout=60)
    assert answer.status_code == 200 and asset_names(answer) == ["tiny_asset"]
    assert session.get(f"{front.url}/assets", verify=ca, timeout=60).status_code == 200   # the UI's pages
    session.delete(f"{front.url}/auth/session", verify=ca, timeout=30)
    assert session.post(f"{front.url}/graphql", json={"query": ASSETS}, verify=ca, timeout=60).status_code == 401


def test_the_subscription_websocket_needs_a_token_and_the_role_of_each_operation(front):
    ws_url = front.url.replace("https", "wss") + "/graphql"
    context = front.pki.client_context()
    with pytest.raises(websockets.InvalidStatus) as refused:
        connect(ws_url, ssl=context, subprotocols=["graphql-ws"], open_timeout=30)
    assert refused.value.response.status_code == 401
    cookie = {"Cookie": f"watchkeeper_session={front.token('viewer')}"}
    with connect(ws_url, ssl=context, subprotocols=["graphql-ws"], additional_headers=cookie,
                 open_timeout=30) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(socket.recv(timeout=30))["type"] == "connection_ack"   # Dagster answered through the front
        socket.send(json.dumps({"type": "start", "id": "1", "payload": {
            "query": LAUNCH, "variables": {"p": {"selector": SELECTOR, "runConfigData": {}}}}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd.code == 4403


def test_logins_refused_logins_and_role_changes_are_audited_once_per_token(front):
    viewer = front.token("viewer", sub="bob@acme.ae")
    forged = front.token("admin", sub="mallory", iss="https://evil.example")
    for _ in range(3):   # the UI sends many requests with one token: one login
        assert front.graphql(ASSETS, viewer).status_code == 200
        assert front.graphql(ASSETS, forged).status_code == 401
    assert front.graphql(ASSETS).status_code == 401             # no token: no login attempt, no entry
    assert front.graphql(ASSETS, front.token("operator", sub="bob@acme.ae")).status_code == 200
    store = MonitoringStore(front.store_url)
    mine = [e for e in store.audit_entries() if e.subject in ("bob@acme.ae", "mallory")]
    issuer = front.idp.url
    assert [(e.action, e.actor, e.subject) for e in mine] == [
        ("auth.login", "bob@acme.ae", "bob@acme.ae"), ("auth.login_failed", "mallory", "mallory"),
        ("auth.role_changed", issuer, "bob@acme.ae"), ("auth.login", "bob@acme.ae", "bob@acme.ae")]
    assert [mine[0].details["role"], mine[3].details["role"]] == ["viewer", "operator"]
    assert (mine[2].details["previous"], mine[2].details["roles"]) == (["viewer"], ["operator"])
    assert mine[1].details["subject_verified"] is False and "another issuer" in mine[1].details["reason"]
    assert mine[0].details["remote"] == "127.0.0.1"
    trail = json.dumps([e.__dict__ for e in store.audit_entries()], default=str)
    assert not [t[:12] for t in front.tokens if t.split(".")[2] in trail]     # tokens never in the trail
    count, broken, _ = store.verify_audit()
    assert broken is None and count >= 4


def test_plain_http_to_the_front_fails(front):
    with pytest.raises(requests.ConnectionError):
        requests.get(front.url.replace("https", "http") + "/graphql", timeout=10)


def test_no_token_reaches_the_front_or_dagster_logs(front):
    """Run last in this module: every token the tests sent, valid or not, is absent from the output."""
    assert len(front.tokens) > 5
    stop(front.process)
    output = front.log.read_text()
    assert "serving the Dagster UI on https://" in output
    leaked = [t[:12] for t in front.tokens if t in output or t.split(".")[2] in output]
    assert leaked == []


def test_without_an_issuer_or_on_a_public_address_without_tls_the_front_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_OIDC_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([*WATCHKEEPER, "ui"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "WATCHKEEPER_OIDC_ISSUER" in done.stderr
    env.update({"WATCHKEEPER_OIDC_ISSUER": "https://idp.example", "WATCHKEEPER_OIDC_AUDIENCE": "watchkeeper"})
    done = subprocess.run([*WATCHKEEPER, "ui", "--host", "0.0.0.0"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "without TLS" in done.stderr
    env["WATCHKEEPER_OIDC_JWKS_URL"] = "http://idp.example/jwks.json"
    done = subprocess.run([*WATCHKEEPER, "ui"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "must be https" in done.stderr


def test_a_flood_of_refused_tokens_from_one_address_does_not_flood_the_trail(store_url):
    """Each random token is 'new', so one entry per refused token would let anyone fill the audit trail."""
    from watchkeeper.front.logins import REFUSED_PER_REMOTE, LoginAudit

    store = MonitoringStore(store_url)
    logins = LoginAudit(store, "https://idp.example")
    for i in range(REFUSED_PER_REMOTE + 30):
        logins.refused(f"garbage-token-{i}", "not a JWT", "203.0.113.7")
    logins.refused("garbage-token-other", "not a JWT", "198.51.100.1")   # another address is still audited
    refused = [e for e in store.audit_entries() if e.action == "auth.login_failed"]
    flooder = [e for e in refused if e.details["remote"] == "203.0.113.7"]
    assert len(flooder) == REFUSED_PER_REMOTE + 1
    assert "not audited one by one" in flooder[-1].details["reason"] and flooder[-1].subject == "unknown"
    assert [e.details["remote"] for e in refused][-1] == "198.51.100.1"
    assert store.verify_audit()[1] is None
