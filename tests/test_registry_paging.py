"""The registry sensor's read of MLflow costs the same few paged calls for 3 models or 3,000.

Against a real MLflow registry (sqlite): every registry call the read makes is counted. Before,
each monitored model cost a `get_model_version` call per tick; now the versions come in one
paged search, so the number of calls depends on the page size, not on the fleet.
"""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient

from watchkeeper import registry as registry_module
from watchkeeper.registry import CHAMPION, MONITORED_TAG, Registry

MODELS = 12


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("fleet")
    runs = [client.create_run(experiment).info.run_id for _ in range(3)]
    for i in range(MODELS):
        name = f"model-{i:02d}"
        client.create_registered_model(name, tags={MONITORED_TAG: "true"} if i == 0 else {})
        for run in runs[: 1 + i % 3]:
            client.create_model_version(name, f"runs:/{run}/model", run_id=run)
        if i:   # model-00 is monitored by its tag: its newest version serves
            client.set_registered_model_alias(name, CHAMPION, "1")
    client.create_registered_model("unmonitored")
    return uri


class Counting:
    """Counts the client's calls by method name, passing each one through."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.calls = client, {}

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)
        return counted


def read(tracking_uri: str):
    registry = Registry(tracking_uri)
    registry.client = counting = Counting(registry.client)
    return registry.monitored(), counting.calls


def test_champions_and_their_runs_in_two_calls(tracking_uri):
    monitored, calls = read(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert calls == {"search_registered_models": 1, "search_model_versions": 1}
    assert sorted(monitored.champions) == [f"model-{i:02d}" for i in range(MODELS)]
    assert monitored.champions["model-00"].version == "1"          # tagged, one version: its newest
    for name, champion in monitored.champions.items():
        assert champion.run_id == client.get_model_version(name, champion.version).run_id


def test_pages_follow_the_token(tracking_uri, monkeypatch):
    whole, _ = read(tracking_uri)
    monkeypatch.setattr(registry_module, "PAGE", 5)
    paged, calls = read(tracking_uri)
    versions = sum(1 + i % 3 for i in range(MODELS))
    assert paged == whole
    assert calls["search_model_versions"] in (math.ceil(versions / 5), math.ceil(versions / 5) + 1)
    assert calls["search_registered_models"] in (math.ceil((MODELS + 1) / 5), math.ceil((MODELS + 1) / 5) + 1)
