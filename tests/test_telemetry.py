"""Spans and JSON logs of evaluation steps: in memory, through Dagster, and out through the
real OTLP/HTTP and console exporters chosen by the standard environment variables."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from watchkeeper.drift import DriftInputError, evaluate_drift
from watchkeeper.profile import fit_profile
from watchkeeper.store import MonitoringStore
from watchkeeper.telemetry import JsonFormatter, evaluation_span

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-08"


@pytest.fixture(scope="module")
def memory():
    """Spans of this process, kept in memory: the host-installed provider the module must use as is."""
    exporter = InMemorySpanExporter()
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(TracerProvider())
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def spans(memory):
    memory.clear()
    return memory


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.normal(5, 2, 2000)})


def attributes(span) -> dict:
    return {key.removeprefix("watchkeeper."): value for key, value in span.attributes.items()}


def test_engine_step_span_has_identifiers_rows_and_duration(spans, reference):
    current = reference.sample(500, random_state=1).assign(x=lambda f: f["x"] + 1.0)
    with evaluation_span("drift_report", "wine_classifier", "3", DAY) as step:
        report = evaluate_drift(fit_profile(reference), current)
        step.set(rows=len(current), dataset_drift=report.dataset_drift, drifted_features=len(report.drifted_features))
    [span] = spans.get_finished_spans()
    assert span.name == "drift_report" and span.status.status_code == StatusCode.UNSET
    found = attributes(span)
    assert {k: found[k] for k in ("step", "model", "version", "window", "rows")} == {
        "step": "drift_report", "model": "wine_classifier", "version": "3", "window": DAY, "rows": 500}
    assert found["dataset_drift"] is True and found["drifted_features"] == 1, "x moved by one sd, y did not"
    assert 0 < found["duration_s"] <= (span.end_time - span.start_time) / 1e9


def test_exception_marks_the_span_error_and_propagates(spans, reference):
    with pytest.raises(DriftInputError), evaluation_span("drift_report", "m", "1", DAY):
        evaluate_drift(fit_profile(reference), reference[["x"]])   # a profiled column is missing
    [span] = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR and "DriftInputError" in span.status.description
    assert [e.attributes["exception.type"] for e in span.events] == ["watchkeeper.drift.DriftInputError"]


def test_handled_failure_marks_the_span_error_without_raising(spans):
    with evaluation_span("drift_report", "m", "1", DAY) as step:
        step.fail(DriftInputError("window has no rows"))
    [span] = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR and "window has no rows" in span.status.description


def test_attributes_otel_would_drop_are_refused(spans):
    with pytest.raises(TypeError, match="rows=None"), evaluation_span("drift_report", "m", "1", DAY) as step:
        step.set(rows=None)
    with evaluation_span("drift_report", "m", "1", DAY) as step:
        step.set(rows=np.int64(7))
    assert attributes(spans.get_finished_spans()[-1])["rows"] == 7


def strict_json(line: str) -> dict:
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def log_lines():
    """JSON lines of a test logger and of the evaluation logger, as the formatter writes them."""
    stream, handler = io.StringIO(), logging.StreamHandler()
    handler.stream = stream
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("test_telemetry"), logging.getLogger("watchkeeper.evaluation")]
    for logger in loggers:
        logger.addHandler(handler)
    loggers[0].setLevel(logging.INFO)
    yield lambda: [strict_json(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_json_logs_carry_the_enclosing_span_and_step(spans, log_lines):
    log = logging.getLogger("test_telemetry")
    log.info("before")
    with evaluation_span("performance_metrics", "diabetes_regressor", "2", DAY) as step:
        log.warning("labels late", extra={"share": float("nan")})
        step.set(rows=40, labelled=12)
    before, inside, finished = log_lines()
    [span] = spans.get_finished_spans()
    trace_id, span_id = trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)
    assert before["message"] == "before" and "trace_id" not in before and "model" not in before
    assert inside["level"] == "WARNING" and inside["message"] == "labels late" and inside["share"] == "nan"
    for line in (inside, finished):
        assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
        assert (line["step"], line["model"], line["version"], line["window"]) == (
            "performance_metrics", "diabetes_regressor", "2", DAY)
    assert finished["logger"] == "watchkeeper.evaluation" and finished["message"] == "performance_metrics finished"
    assert finished["attributes"]["rows"] == 40 and finished["attributes"]["labelled"] == 12
    assert finished["timestamp"].endswith("+00:00")


def test_failed_step_logs_an_error_with_the_exception(spans, log_lines):
    with pytest.raises(ZeroDivisionError), evaluation_span("model_health", "m", "1", DAY):
        1 / 0
    [line] = log_lines()
    assert line["level"] == "ERROR" and line["model"] == "m" and "ZeroDivisionError" in line["exception"]


def test_materialised_assets_trace_every_model(spans, reference, tmp_path, monkeypatch):
    """production_window and drift_report through Dagster with the code location's own resources."""
    from definitions import defs

    monkeypatch.setenv("WATCHKEEPER_STORE_URL", f"sqlite:///{tmp_path / 'monitoring.db'}")
    monkeypatch.setenv("WATCHKEEPER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WATCHKEEPER_MLFLOW_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("WATCHKEEPER_ALERT_POLICY", str(ROOT / "deploy" / "alerting.demo.yaml"))
    store = MonitoringStore(os.environ["WATCHKEEPER_STORE_URL"])
    for model in ("busy", "idle"):
        store.put_profile(model, "4", "regression", fit_profile(reference).to_dict(), {"features": ["x", "y"]})
    predictions = reference.head(300).assign(
        timestamp=pd.Timestamp(DAY, tz="UTC"), prediction_id=[f"p{i}" for i in range(300)], prediction=0.0)
    (tmp_path / "inference" / "busy").mkdir(parents=True)
    predictions.to_parquet(tmp_path / "inference" / "busy" / f"{DAY}.parquet")

    from monitoring_assets import evaluate_models
    result = dg.materialize([evaluate_models], selection=["production_window", "drift_report"], partition_key=DAY,
                            resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    found = {(s.name, attributes(s)["model"]): attributes(s) for s in spans.get_finished_spans()}
    # a window without rows has no drift to compute, so no drift_report step to trace for "idle"
    assert set(found) == {("production_window", "busy"), ("production_window", "idle"), ("drift_report", "busy")}
    assert found["production_window", "busy"]["rows"] == 300 and found["production_window", "busy"]["problems"] == 0
    assert found["production_window", "idle"]["rows"] == 0
    assert found["drift_report", "busy"]["rows"] == 300 and found["drift_report", "busy"]["dataset_drift"] is False
    assert {a["version"] for a in found.values()} == {"4"} and {a["window"] for a in found.values()} == {DAY}


# --- exporters chosen by the environment, each in a fresh process (the global provider is set once) ---

STEP = """
from watchkeeper.telemetry import evaluation_span
with evaluation_span("drift_report", "wine_classifier", "3", "2026-11-08", rows=120) as step:
    step.set(dataset_drift=True)
"""


def run_step(env: dict[str, str], script: str = STEP) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WATCHKEEPER_"))}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=30)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each POST /v1/traces as the protobuf request."""

    received: list[tuple[dict, ExportTraceServiceRequest]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}, request))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", Collector.received
    server.shutdown()
    server.server_close()


def otlp_value(value):
    return getattr(value, value.WhichOneof("value"))


def test_otlp_exporter_sends_the_span_over_http(collector):
    endpoint, received = collector
    done = run_step({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                     "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20s3cret-token"})
    assert done.returncode == 0, done.stderr
    [(headers, request)] = received
    assert headers["path"] == "/v1/traces" and headers["authorization"] == "Bearer s3cret-token"
    assert headers["content-type"] == "application/x-protobuf"
    [resource_spans] = request.resource_spans
    resource = {a.key: otlp_value(a.value) for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "watchkeeper"
    [span] = resource_spans.scope_spans[0].spans
    found = {a.key: otlp_value(a.value) for a in span.attributes}
    assert span.name == "drift_report"
    assert {k: found[f"watchkeeper.{k}"] for k in ("model", "version", "window", "rows", "dataset_drift")} == {
        "model": "wine_classifier", "version": "3", "window": "2026-11-08", "rows": 120, "dataset_drift": True}
    assert found["watchkeeper.duration_s"] > 0
    [line] = [json.loads(x) for x in done.stderr.splitlines()]
    assert line["trace_id"] == span.trace_id.hex() and line["span_id"] == span.span_id.hex()
    assert "s3cret" not in done.stderr + done.stdout, "the exporter's credentials are never logged"


def test_console_exporter_writes_the_span_to_stderr():
    done = run_step({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "watchkeeper-nightly"})
    assert done.returncode == 0 and done.stdout == "", "stdout stays free for the command's own output"
    log, span = [json.loads(x) for x in done.stderr.splitlines()]
    assert span["name"] == "drift_report" and span["attributes"]["watchkeeper.rows"] == 120
    assert span["resource"]["attributes"]["service.name"] == "watchkeeper-nightly"
    assert span["context"]["trace_id"] == "0x" + log["trace_id"]


def test_no_exporter_installs_nothing_and_still_logs():
    script = STEP + """
import time
from opentelemetry import trace
assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
assert not step.span.is_recording()
start = time.perf_counter()
for _ in range(2000):
    with evaluation_span("drift_report", "m", "1", "2026-11-08") as s:
        s.set(rows=1)
print((time.perf_counter() - start) / 2000)
"""
    done = run_step({"WATCHKEEPER_LOG_LEVEL": "WARNING"}, script)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 2e-4, "a traced step costs next to nothing when tracing is off"
    done = run_step({})
    [line] = [json.loads(x) for x in done.stderr.splitlines()]
    assert "trace_id" not in line and line["model"] == "wine_classifier" and line["attributes"]["rows"] == 120


@pytest.mark.parametrize("env, error", [
    ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER: unknown exporter jaeger (use otlp, console or none)"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported (use http/protobuf)"),
    ({"WATCHKEEPER_LOG_LEVEL": "LOUD"}, "WATCHKEEPER_LOG_LEVEL: unknown level 'LOUD'"),
])
def test_bad_settings_fail_with_one_line(env, error):
    done = run_step(env)
    assert done.returncode != 0 and error in done.stderr.strip().splitlines()[-1]
