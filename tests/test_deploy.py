"""deploy/: the compose file parses, and deploy/helm carries its settings and renders.

tests/test_production_profile.py runs the production profile for real from deploy/production's
instance and workspace files; compose.yaml runs the same processes on one host, and the Helm
values with the worker Deployment beside them are its copy for the Dagster chart on Kubernetes.
The first tests hold the copy to compose, setting by setting, so that a change to one file that
forgets the other fails here. One asks docker-compose whether it accepts the file; one renders
the chart with `helm template` (which also checks the values against the chart's
values.schema.json): it needs the `helm` binary and a copy of the Dagster chart, which is
published only in Dagster's chart repository, and without them it skips, saying which is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

DEPLOY = ROOT / "deploy"
CHART_VARIABLE = "WATCHKEEPER_DAGSTER_CHART"   # a folder holding the Dagster chart (helm pull dagster/dagster --untar)


def _load(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def values() -> dict:
    return _load(DEPLOY / "helm" / "values.yaml")


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load(DEPLOY / "production" / "compose.yaml")


def _env(entries: list[dict]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in entries}


def _worker_container() -> dict:
    """The worker Deployment's container (deploy/helm/celery-workers.yaml: the chart has no place for it)."""
    worker = _load(DEPLOY / "helm" / "celery-workers.yaml")
    assert worker["kind"] == "Deployment"
    return worker["spec"]["template"]["spec"]["containers"][0]


def test_instance_storage_is_an_external_postgresql_with_the_psycopg2_scheme(values):
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"   # a bare postgresql:// means psycopg 3
    assert postgresql["postgresqlHost"] and postgresql["postgresqlDatabase"] and values["global"]["postgresqlSecretName"]
    instance = _load(DEPLOY / "production" / "dagster.yaml")
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}


def test_the_run_queue_has_the_compose_profiles_limits(values):
    """The queued coordinator's limits are those of deploy/production/dagster.yaml, in the chart's spelling."""
    runs = _load(DEPLOY / "production" / "dagster.yaml")["concurrency"]["runs"]
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runCoordinator"]["enabled"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    monitoring = _load(DEPLOY / "production" / "dagster.yaml")["run_monitoring"]
    assert daemon["runMonitoring"] == {"enabled": monitoring["enabled"],
                                       "startTimeoutSeconds": monitoring["start_timeout_seconds"]}


def test_code_location_and_workers_run_what_compose_runs(values, compose):
    """The user deployment serves the same module as compose's code server; the worker Deployment
    (deploy/helm/celery-workers.yaml) starts workers with compose's command; both send steps to
    Celery the same way."""
    services = compose["services"]
    code = values["dagster-user-deployments"]["deployments"][0]
    code_command = services["code"]["command"]
    assert code["dagsterApiGrpcArgs"] == code_command[code_command.index("-m"):]
    assert code["port"] == int(services["code"]["environment"]["DAGSTER_CODE_SERVER_PORT"])

    worker = _worker_container()
    assert worker["command"] == services["worker"]["command"]
    assert worker["image"] == services["worker"]["image"] == code["image"]["repository"] + ":" + code["image"]["tag"]

    compose_env = services["worker"]["environment"]
    for env in (_env(code["env"]), _env(worker["env"])):
        assert env["WATCHKEEPER_EXECUTOR"] == compose_env["WATCHKEEPER_EXECUTOR"] == "celery"
        assert env["WATCHKEEPER_CELERY_BACKEND"] == compose_env["WATCHKEEPER_CELERY_BACKEND"]
        assert env["WATCHKEEPER_DATA_DIR"] == compose_env["WATCHKEEPER_DATA_DIR"]
        assert env["WATCHKEEPER_ALERT_POLICY"] == compose_env["WATCHKEEPER_ALERT_POLICY"]
    assert int(_env(code["env"])["WATCHKEEPER_SHARDS"]) > 1


def test_secrets_come_from_the_secret_never_from_the_values(values):
    """Database URLs, the broker and the signing key are in the Secret `watchkeeper-env` for the code
    location, every run and every worker; the values file names none of them."""
    code = values["dagster-user-deployments"]["deployments"][0]
    assert code["envSecrets"] == [{"name": "watchkeeper-env"}]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "watchkeeper-env"}]
    assert _worker_container()["envFrom"] == [{"secretRef": {"name": "watchkeeper-env"}}]
    secret_names = {"DAGSTER_POSTGRES_URL", "WATCHKEEPER_STORE_URL", "WATCHKEEPER_CELERY_BROKER",
                    "WATCHKEEPER_SIGNING_KEY"}
    named = {e["name"] for e in _worker_container()["env"]} | {e["name"] for e in code["env"]}
    assert not named & secret_names


def _chart() -> tuple[str, Path]:
    helm = shutil.which("helm")
    if not helm:
        pytest.skip("no `helm` on PATH (docs/scale.md says where one can be had)")
    chart = os.environ.get(CHART_VARIABLE)
    if not chart or not (Path(chart) / "Chart.yaml").is_file():
        pytest.skip(f"the Dagster chart is not here: set {CHART_VARIABLE} to a folder made by "
                    "`helm pull dagster/dagster --untar` (the chart is published only in Dagster's chart repository)")
    return helm, Path(chart)


def _find(tree, key: str):
    """The first value under `key` anywhere in a nested document (the chart nests the run queue's config)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def test_the_chart_renders_with_the_values_into_the_compose_profiles_instance():
    helm, chart = _chart()
    done = subprocess.run([helm, "template", "watchkeeper", str(chart), "-f", str(DEPLOY / "helm" / "values.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    instance = next(yaml.safe_load(d["data"]["dagster.yaml"]) for d in documents
                    if d.get("kind") == "ConfigMap" and "dagster.yaml" in d.get("data", {}))
    runs = _load(DEPLOY / "production" / "dagster.yaml")["concurrency"]["runs"]
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert _find(instance, "tag_concurrency_limits") == runs["tag_concurrency_limits"]
    assert "postgres" in instance["storage"]
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither `docker-compose` (Debian package docker-compose) nor the `docker compose` plugin is here")


def test_compose_accepts_the_file_and_demands_a_signing_key():
    """`config` parses and interpolates the file as `up` would, without a Docker daemon."""
    command = [*_compose_command(), "-f", str(DEPLOY / "production" / "compose.yaml"), "config", "-q"]
    env = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_SIGNING_KEY"}
    accepted = subprocess.run(command, env={**env, "WATCHKEEPER_SIGNING_KEY": "k" * 32},
                              capture_output=True, text=True, timeout=60)
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "set a key of 32+ characters" in refused.stderr
