"""The Dagster webserver serves the demo's code location without load errors (the shared
`webserver` fixture of conftest.py serves the demo with its broken day)."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.slow
QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


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
