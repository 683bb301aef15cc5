"""The Prometheus exporter: what /metrics says about a small real store, over real HTTP.

Each test builds a SQLite monitoring store in tmp_path through MonitoringStore's own
writers, serves it with the exporter on a loopback port and parses the page with
prometheus_client's parser, so the text format itself is checked too.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, WATCHKEEPER, free_port
from test_prometheus import stop, wait_for
from watchkeeper.metrics_export import Gauge, PipelineCollector, RunTiming, StoreCollector, push_metrics, render, serve
from watchkeeper.alerting.policy import load_policy
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.problems import ProblemLog, fingerprint
from watchkeeper.security.bearer import SharedToken
from watchkeeper.store import MonitoringStore

OLD, NEW = "2026-11-01", "2026-11-02"
NEW_END = datetime(2026, 11, 3, tzinfo=timezone.utc)   # daily windows end at the next midnight, UTC
FEATURES = [("income", 0.5, True), ("age", 0.3, True), ("tenure", 0.05, False), ("region", None, False)]


def drift_report(features: list[tuple[str, float | None, bool]]) -> dict:
    return {"dataset_drift": any(d for _, _, d in features), "n_current": 100,
            "features": [{"name": n, "effect_size": e, "drifted": d, "test": "ks"} for n, e, d in features]}


@pytest.fixture
def store(tmp_path) -> MonitoringStore:
    """churn v2: degraded, two drifted features, an older window; fraud v1: ok, no labels yet."""
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    store.put_metrics("churn", OLD, "2", [{"name": "accuracy", "value": 0.9, "lower": 0.88, "upper": 0.92}], 90, 100)
    store.put_drift("churn", OLD, "2", drift_report([(n, 0.01, False) for n, _, _ in FEATURES]))
    store.put_health("churn", OLD, "2", "ok", [])
    store.put_metrics("churn", NEW, "2", [{"name": "accuracy", "value": 0.8, "lower": 0.75, "upper": 0.85},
                                          {"name": "roc_auc", "value": None, "lower": None, "upper": None}], 40, 100)
    store.put_drift("churn", NEW, "2", drift_report(FEATURES))
    store.put_health("churn", NEW, "2", "degraded", [])
    store.put_metrics("fraud", NEW, "1", [{"name": "mae", "value": 3.5, "lower": 3.0, "upper": 4.0}], 0, 0)
    store.put_drift("fraud", NEW, "1", drift_report([("amount", 0.02, False)]))
    store.put_health("fraud", NEW, "1", "ok", [])
    problems = [AlertRecord(fingerprint("churn", "2", kind), "churn", "2", NEW, "warning", kind, kind, "")
                for kind in ("performance", "data_drift")]
    ProblemLog(store).record("churn", "2", NEW, problems, load_policy(ROOT / "deploy" / "alerting.demo.yaml"))
    return store


def scrape(*collectors) -> dict[tuple, float]:
    """{(series name, sorted label pairs): value} from a real HTTP scrape of /metrics."""
    server, thread = serve(collectors, "127.0.0.1", 0)
    try:
        response = requests.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(page: dict, name: str, **labels) -> float:
    return page[name, tuple(sorted(labels.items()))]


def series(page: dict, name: str) -> dict[tuple, float]:
    return {labels: v for (n, labels), v in page.items() if n == name}


def collector(store: MonitoringStore, **kwargs) -> StoreCollector:
    return StoreCollector(str(store.engine.url), clock=lambda: datetime(2026, 11, 3, 6, tzinfo=timezone.utc), **kwargs)


def test_metric_series_are_the_newest_windows_rows(store):
    page = scrape(collector(store))
    newest = [r for r in store.metrics() if r.window == NEW]
    assert len(series(page, "watchkeeper_metric_value")) == len(newest) == 3
    for row in newest:
        labels = {"model": row.model, "version": row.version, "metric": row.metric}
        for column in ("value", "lower", "upper"):
            exported = value(page, f"watchkeeper_metric_{column}", **labels)
            stored = getattr(row, column)
            assert exported == stored or (stored is None and math.isnan(exported))


def test_health_drift_labels_and_alerts(store):
    page = scrape(collector(store))
    assert series(page, "watchkeeper_model_health") == {
        (("model", "churn"), ("version", "2")): 2.0, (("model", "fraud"), ("version", "1")): 0.0}
    churn_status = {dict(k)["status"]: v for k, v in series(page, "watchkeeper_model_status").items()
                    if dict(k)["model"] == "churn"}
    assert churn_status == {"degraded": 1.0, "drifted": 0.0, "ok": 0.0, "no_data": 0.0}
    assert value(page, "watchkeeper_label_completeness", model="churn", version="2") == 0.4
    assert math.isnan(value(page, "watchkeeper_label_completeness", model="fraud", version="1"))   # 0 of 0
    assert value(page, "watchkeeper_window_predictions", model="churn", version="2") == 100
    for name, effect, drifted in FEATURES:
        exported = value(page, "watchkeeper_feature_drift_effect_size", model="churn", feature=name)
        assert exported == effect or (effect is None and math.isnan(exported))
        assert value(page, "watchkeeper_feature_drifted", model="churn", feature=name) == float(drifted)
    assert value(page, "watchkeeper_dataset_drift", model="churn", version="2") == 1.0
    assert value(page, "watchkeeper_drifted_features", model="churn", version="2") == 2
    assert series(page, "watchkeeper_model_alerts") == {
        (("kind", "data_drift"), ("model", "churn")): 1.0, (("kind", "performance"), ("model", "churn")): 1.0}
    assert series(page, "watchkeeper_alerts") == {(("state", "pending"),): 2.0}   # queued, not yet sent


def test_freshness_is_the_age_of_the_newest_evaluated_window(store):
    page = scrape(collector(store))   # the clock says 06:00 the day after the newest window
    assert series(page, "watchkeeper_window_age_seconds") == {(("model", "churn"),): 6 * 3600.0,
                                                               (("model", "fraud"),): 6 * 3600.0}
    assert value(page, "watchkeeper_last_evaluation_timestamp_seconds") == NEW_END.timestamp()


def test_history_adds_no_series(store):
    before = set(scrape(collector(store)))
    for day in range(10, 30):
        store.put_health("churn", f"2026-10-{day}", "2", "drifted", [])
        store.put_drift("churn", f"2026-10-{day}", "2", drift_report([(f"old_{day}", 1.0, True)]))
    assert set(scrape(collector(store))) == before


def test_feature_series_are_capped_to_the_most_drifted(store):
    page = scrape(collector(store, max_features_per_model=3))
    exported = {dict(k)["feature"] for k in series(page, "watchkeeper_feature_drift_effect_size")
                if dict(k)["model"] == "churn"}
    assert exported == {"income", "age", "tenure"}   # both drifted, then the largest effect; not the null one
    assert value(page, "watchkeeper_drifted_features", model="churn", version="2") == 2   # counts are not capped
    assert value(page, "watchkeeper_monitored_features", model="churn", version="2") == 4
    one = scrape(collector(store, max_features_per_model=1))
    assert {dict(k)["feature"] for k in series(one, "watchkeeper_feature_drifted")} == {"income", "amount"}
    with pytest.raises(ValueError, match="at least 1"):
        collector(store, max_features_per_model=0)


def test_reports_with_nan_are_read_and_malformed_ones_fail_the_scrape_by_name(store):
    store.put_drift("fraud", NEW, "1", drift_report([("amount", math.nan, False)]))   # json.dumps writes NaN
    assert math.isnan(value(scrape(collector(store)), "watchkeeper_feature_drift_effect_size",
                            model="fraud", feature="amount"))
    store.put_drift("fraud", NEW, "1", {"dataset_drift": False, "n_current": 1, "features": [{"name": "amount"}]})
    with pytest.raises(ValueError, match="drift report of fraud 2026-11-02: Object missing required field"):
        collector(store).gauges()


def test_alerts_by_delivery_state_come_from_the_outbox(store):
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET status = 'delivered' WHERE fingerprint LIKE '%performance'"))
    page = scrape(collector(store))
    assert series(page, "watchkeeper_alerts") == {(("state", "delivered"),): 1.0, (("state", "pending"),): 1.0}


def test_pipeline_durations_per_job():
    runs = [RunTiming("evaluate_window", "success", 100.0, 160.0),
            RunTiming("evaluate_window", "failure", 200.0, 205.0), RunTiming("refresh_labels", "success", 10.0, 12.5)]
    page = scrape(PipelineCollector(lambda: runs))
    assert value(page, "watchkeeper_pipeline_last_run_duration_seconds", pipeline="evaluate_window") == 5.0
    assert value(page, "watchkeeper_pipeline_last_success_timestamp_seconds", pipeline="evaluate_window") == 160.0
    assert value(page, "watchkeeper_pipeline_recent_runs", pipeline="evaluate_window", status="failure") == 1
    assert value(page, "watchkeeper_pipeline_last_run_duration_seconds", pipeline="refresh_labels") == 2.5


def test_dagster_runs_are_read_from_a_real_instance(tmp_path):
    import dagster as dg

    from cli.exporter import dagster_runs

    @dg.op
    def step() -> int:
        return 1

    @dg.job
    def evaluate_window():
        step()

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert evaluate_window.execute_in_process(instance=instance).success
    [run] = dagster_runs(tmp_path)()
    assert (run.job, run.status) == ("evaluate_window", "success") and run.end >= run.start > 0


def test_label_values_and_special_numbers_survive_the_text_format():
    odd = 'a "quoted" \\ back\nslash'
    gauge = Gauge("watchkeeper_test", "help with \\ and\nnewline", ("model",))
    for model, number in ((odd, 1.5), ("inf", math.inf), ("-inf", -math.inf), ("nan", math.nan)):
        gauge.add(model, number)
    [family] = text_string_to_metric_families(render([gauge]).decode())
    parsed = {s.labels["model"]: s.value for s in family.samples}
    assert parsed[odd] == 1.5 and parsed["inf"] == math.inf and parsed["-inf"] == -math.inf
    assert math.isnan(parsed["nan"])
    assert [s.labels for s in family.samples] == [s.labels for s in gauge.to_metric().samples]


def test_an_unreadable_store_fails_the_scrape_not_the_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    server, thread = serve([StoreCollector(url)], "127.0.0.1", 0)
    address = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        failed = requests.get(f"{address}/metrics", timeout=30)
        assert failed.status_code == 500 and "no such table" in failed.text and failed.text.count("\n") == 1
        MonitoringStore(url).put_health("m", NEW, "1", "ok", [])
        assert requests.get(f"{address}/metrics", timeout=30).status_code == 200
        assert requests.get(f"{address}/", timeout=30).status_code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Gateway:
    """A stand-in Pushgateway on loopback that records each request and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, str, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                gateway.requests.append((self.command, self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_push_metrics_puts_the_registry_under_the_job(store):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector(store))
    with Gateway() as gateway:
        push_metrics(gateway.url, "nightly-eval", registry, grouping_key={"instance": "batch-7"})
    [(method, path, body)] = gateway.requests
    assert (method, path) == ("PUT", "/metrics/job/nightly-eval/instance/batch-7")
    pushed = {s.name: s for f in text_string_to_metric_families(body) for s in f.samples}
    assert pushed["watchkeeper_model_health"].value in (0.0, 2.0)
    with Gateway(status=500) as failing, pytest.raises(OSError, match="500"):
        push_metrics(failing.url, "nightly-eval", registry)


# --- the command ------------------------------------------------------------------------

def exporter_env(**extra: str) -> dict[str, str]:
    """This environment without the exporter's settings (the command must find them itself), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WATCHKEEPER_STORE_URL", "DAGSTER_HOME", "WATCHKEEPER_EXPORTER_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run(args: list[str], cwd, env_extra: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*WATCHKEEPER, "exporter", *args], cwd=cwd, env=exporter_env(**(env_extra or {})),
                          capture_output=True, text=True, timeout=timeout)


def test_command_without_a_store_here_says_so_in_one_line(tmp_path):
    done = run(["--port", "0"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "monitoring.db does not exist" in done.stderr


def test_command_pushes_once_with_the_store_url_from_the_environment(store, tmp_path):
    with Gateway() as gateway:
        done = run(["--push-gateway", gateway.url, "--job", "nightly"], tmp_path,
                   {"WATCHKEEPER_STORE_URL": str(store.engine.url)})
    assert done.returncode == 0, done.stderr
    [(method, path, body)] = gateway.requests
    assert (method, path) == ("PUT", "/metrics/job/nightly")
    assert 'watchkeeper_model_health{model="churn",version="2"} 2.0' in body
    with Gateway(status=503) as failing:
        refused = run(["--push-gateway", failing.url], tmp_path, {"WATCHKEEPER_STORE_URL": str(store.engine.url)})
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "503" in refused.stderr


# --- credentials ------------------------------------------------------------------------

TOKEN = "scrape-token-" + "x" * 32


def test_a_scrape_without_the_token_gets_401_and_no_data(store):
    server, thread = serve([collector(store)], "127.0.0.1", 0, token=SharedToken(TOKEN))
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        for headers in ({}, {"Authorization": "Bearer wrong-" + TOKEN}, {"Authorization": TOKEN},
                        {"Authorization": "Basic " + TOKEN}):
            refused = requests.get(url, headers=headers, timeout=30)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert "watchkeeper_" not in refused.text and "churn" not in refused.text
        allowed = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert allowed.status_code == 200 and 'watchkeeper_model_health{model="churn",version="2"} 2.0' in allowed.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_command_in_a_demo_folder_needs_the_token_from_its_secrets(store, tmp_path):
    """The contract: started in a demo folder (monitoring.db and secrets/exporter.token, as
    `watchkeeper demo` leaves them), it answers 401 without credentials and /metrics with them."""
    from cli.demo import demo_endpoint_secrets

    demo_endpoint_secrets(tmp_path)   # the store fixture wrote tmp_path/monitoring.db
    token = (tmp_path / "secrets" / "exporter.token").read_text().strip()
    port = free_port()
    process = subprocess.Popen([*WATCHKEEPER, "exporter", "--port", str(port)], cwd=tmp_path, env=exporter_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"https://127.0.0.1:{port}/metrics"
        ca = str(tmp_path / "secrets" / "ca.crt")
        refused = wait_for(lambda: [requests.get(url, verify=ca, timeout=5)], "exporter", process=process)[0]
        assert refused.status_code == 401 and "churn" not in refused.text
        allowed = requests.get(url, verify=ca, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert allowed.status_code == 200 and 'model="churn"' in allowed.text
    finally:
        stop(process)
    assert token not in process.stderr.read()


def test_command_without_credentials_or_on_a_public_address_without_tls_refuses_to_start(store, tmp_path):
    env = {"WATCHKEEPER_STORE_URL": str(store.engine.url)}
    done = run(["--port", "0"], tmp_path, env)
    assert done.returncode == 2 and "WATCHKEEPER_EXPORTER_TOKEN" in done.stderr and done.stderr.count("\n") == 1
    env["WATCHKEEPER_EXPORTER_TOKEN"] = "short"
    done = run(["--port", "0"], tmp_path, env)
    assert done.returncode == 2 and "at least 32 characters" in done.stderr and "short" not in done.stderr
    env["WATCHKEEPER_EXPORTER_TOKEN"] = TOKEN
    done = run(["--port", "0", "--host", "0.0.0.0"], tmp_path, env)
    assert done.returncode == 2 and "without TLS" in done.stderr
