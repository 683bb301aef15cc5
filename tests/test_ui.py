"""The Dagster webserver serves the demo's code location without load errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from cli.demo import demo_environment
from conftest import ROOT

pytestmark = pytest.mark.slow
QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(demo):
    port = free_port()
    env = {**os.environ, **demo_environment(demo[0])}
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"),
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def graphql(url: str, query: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def test_code_location_loads_without_errors(webserver):
    entries = graphql(webserver, QUERY)["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [("watchkeeper", "RepositoryLocation")]


def test_ui_sees_the_demo_runs(webserver):
    runs = graphql(webserver, "{ runsOrError { ... on Runs { results { status jobName } } } }")["runsOrError"]["results"]
    assert runs and {r["status"] for r in runs} == {"SUCCESS"}
    assert {"evaluate_window", "refresh_labels", "profile_model"} <= {r["jobName"] for r in runs}
