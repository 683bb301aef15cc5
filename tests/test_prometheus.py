"""Real Prometheus against the real exporter, on the demo.

`watchkeeper exporter` is started in the demo folder with no store URL and no
DAGSTER_HOME (the defaults must find the demo), a Prometheus (Debian's package) scrapes
it every second with deploy/prometheus/prometheus.yml's job and rules, and every PromQL
expression of the dashboards and alerting rules is run through its HTTP API. promtool
checks the shipped config and runs the rules' unit tests. Without Prometheus installed
these tests are skipped, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import yaml

from conftest import ROOT, WATCHKEEPER

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.rules.yml"))
DEADLINE = 90   # seconds: the exporter imports its stack, Prometheus lands its first sample 5-9 s after start


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install it (see .ci/run)")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, deadline: float = DEADLINE, process: subprocess.Popen | None = None):
    """Poll `check` until it returns something truthy; fail with `what` after the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"{what}: nothing after {deadline} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- promtool: the shipped files, offline -------------------------------------------------

def test_promtool_accepts_the_shipped_config_and_rules(tmp_path):
    """Checked as deployed: the scrape job's token and CA files in place next to the config
    (promtool fails on a missing credentials file), the exporter over https with a token."""
    from cli.demo import demo_endpoint_secrets

    config = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, config)
    demo_endpoint_secrets(tmp_path)
    (config / "watchkeeper").mkdir()
    for name in ("exporter.token", "ca.crt"):
        shutil.copy(tmp_path / "secrets" / name, config / "watchkeeper" / name)
    done = subprocess.run([binary("promtool"), "check", "config", str(config / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(RULES)} rule files found" in done.stdout + done.stderr
    job = next(j for j in yaml.safe_load((config / "prometheus.yml").read_text())["scrape_configs"]
               if j["job_name"] == "watchkeeper")
    assert job["scheme"] == "https" and job["authorization"]["type"] == "Bearer"
    assert job["tls_config"]["ca_file"] and not job["tls_config"]["insecure_skip_verify"]


def test_promtool_rule_unit_tests_pass():
    tests = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    done = subprocess.run([binary("promtool"), "test", "rules", *tests], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the live stack on the demo -----------------------------------------------------------

@pytest.fixture(scope="module")
def exporter(demo):
    """`watchkeeper exporter` run in the demo folder with no further setup; yields its port."""
    home, _ = demo
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHKEEPER_STORE_URL", "DAGSTER_HOME")}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("WATCHKEEPER_EXPORTER_TOKEN", None)
    process = subprocess.Popen([*WATCHKEEPER, "exporter", "--port", str(port)], cwd=home, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    secrets = home / "secrets"   # the demo's exporter token and CA: Prometheus scrapes with them
    token = (secrets / "exporter.token").read_text().strip()
    try:
        wait_for(lambda: requests.get(f"https://127.0.0.1:{port}/metrics", verify=str(secrets / "ca.crt"), timeout=5,
                                      headers={"Authorization": f"Bearer {token}"}).ok, "exporter", process=process)
        yield port
    finally:
        stop(process)


@pytest.fixture(scope="module")
def prometheus(exporter, demo, tmp_path_factory):
    """A Prometheus of our own (own port, config and storage) scraping the exporter every second."""
    executable = binary("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "watchkeeper")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter}"]}]
    secrets = demo[0] / "secrets"   # the shipped job's https, token and CA, pointed at the demo's files
    job["authorization"]["credentials_file"] = str(secrets / "exporter.token")
    job["tls_config"]["ca_file"] = str(secrets / "ca.crt")
    job["scrape_timeout"] = "1s"
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"] = [job]
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen([executable, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for(lambda: instant(api, "watchkeeper_model_health"), "first scrape in Prometheus", process=process)
        yield api
    finally:
        stop(process)


def instant(api: str, expr: str) -> list[dict]:
    answer = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    return answer["data"]["result"]


def over_last_minute(api: str, expr: str) -> list[dict]:
    end = time.time()
    answer = requests.get(f"{api}/query_range", params={"query": expr, "start": end - 60, "end": end, "step": 1},
                          timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    return answer["data"]["result"]


def label_values(api: str, query: str) -> list[str]:
    """Grafana's `label_values(selector, label)` variable query, through the series API."""
    selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query).groups()
    answer = requests.get(f"{api}/label/{label}/values", params={"match[]": selector}, timeout=10).json()
    assert answer["status"] == "success", f"{query}: {answer.get('error')}"
    return answer["data"]


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], text)


def demo_verdicts(summary: dict) -> dict[str, str]:
    return {m["name"]: m["health"] for m in summary["models"]}


@pytest.mark.slow
def test_exporter_in_the_demo_folder_serves_every_demo_model(prometheus, demo):
    _, summary = demo
    health = {r["metric"]["model"]: r["value"][1] for r in instant(prometheus, "watchkeeper_model_health")}
    codes = {"ok": "0", "drifted": "1", "degraded": "2", "no_data": "-1"}
    assert health == {model: codes[verdict] for model, verdict in demo_verdicts(summary).items()}
    jobs = {r["metric"]["pipeline"] for r in instant(prometheus, "watchkeeper_pipeline_last_run_duration_seconds")}
    assert "evaluate_window" in jobs   # ./dagster_home was found without DAGSTER_HOME


@pytest.mark.slow
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_returns_data_for_the_demo(prometheus, demo, path):
    _, summary = demo
    dashboard = json.loads(path.read_text())
    preferred = {"model": next(m for m, v in demo_verdicts(summary).items() if v == "degraded")}
    values = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            options = label_values(prometheus, substitute(variable["query"], values))
            assert options, f"variable {variable['name']} has no values"
            values[variable["name"]] = preferred.get(variable["name"], options[0])
            assert values[variable["name"]] in options
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], values)
            result = instant(prometheus, expr) if target.get("instant") else over_last_minute(prometheus, expr)
            if not result:
                empty.append(f"{panel['title']}: {expr}")
    assert empty == []


def rules() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def expected_alerts(summary: dict) -> set[tuple[str, str]]:
    """(alert, model) pairs the demo must raise: its verdicts, and stale windows once two days have passed."""
    from watchkeeper.demo.simulate import demo_days

    by_verdict = {"degraded": "WatchkeeperModelDegraded", "drifted": "WatchkeeperModelDrifted",
                  "no_data": "WatchkeeperModelNoTraffic"}
    expected = {(by_verdict[v], m) for m, v in demo_verdicts(summary).items() if v in by_verdict}
    last = demo_days()[-1]
    last_end = datetime(last.year, last.month, last.day, tzinfo=timezone.utc) + timedelta(days=1)
    if datetime.now(timezone.utc) - last_end > timedelta(days=2):
        expected |= {("WatchkeeperWindowStale", m) for m in demo_verdicts(summary)}
    return expected


@pytest.mark.slow
def test_alert_rules_raise_exactly_the_demos_problems(prometheus, demo):
    _, summary = demo
    expected = expected_alerts(summary)
    assert {name for name, _ in expected} >= {"WatchkeeperModelDegraded", "WatchkeeperModelDrifted"}

    def active() -> set[tuple[str, str]]:
        alerts = requests.get(f"{prometheus}/alerts", timeout=10).json()["data"]["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("model", "")) for a in alerts}

    wait_for(lambda: active() >= expected, f"alerts {sorted(expected)}")
    assert active() == expected


@pytest.mark.slow
def test_every_rule_expression_evaluates_on_the_demo_signals(prometheus, demo):
    """Each rule's signal (the left side of its comparison) has data, and the rule itself
    returns data exactly when the demo should raise it."""
    _, summary = demo
    firing = {name for name, _ in expected_alerts(summary)}
    wrong = []
    for rule in rules():
        signal = re.split(r"\s(?:==|!=|>=|<=|>|<)\s", rule["expr"], maxsplit=1)[0]
        if not instant(prometheus, signal):
            wrong.append(f"{rule['alert']}: no data for {signal}")
        if bool(instant(prometheus, rule["expr"])) != (rule["alert"] in firing):
            wrong.append(f"{rule['alert']}: {rule['expr']} {'should' if rule['alert'] in firing else 'should not'} "
                         "return data")
    assert wrong == []
