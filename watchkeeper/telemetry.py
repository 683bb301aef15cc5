"""Tracing and structured logs of every evaluation step, with the same identifiers in both.

Each per-model step of a window (profile, window, drift, metrics, concept drift, health)
runs inside `evaluation_span`: an OpenTelemetry span named after the step, carrying
``watchkeeper.step/model/version/window``, row counts and the duration, and a JSON log line
when the step ends, carrying the same identifiers and the span's trace and span ids, so
a log line leads to its trace and back.

Where spans go is chosen by the standard OpenTelemetry variables, read once, lazily, on the
first step (nothing happens at import):

    OTEL_TRACES_EXPORTER           otlp | console | none (default), or a comma-separated list
    OTEL_EXPORTER_OTLP_ENDPOINT    e.g. http://collector:4318 (OTLP over HTTP/protobuf; spans
                                   are POSTed to <endpoint>/v1/traces)
    OTEL_EXPORTER_OTLP_HEADERS     e.g. authorization=Bearer%20... (read by the exporter, never logged)
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED, OTEL_BSP_*  as in the SDK
    WATCHKEEPER_LOG_LEVEL          level of the JSON logs (default INFO)

With ``none`` no tracer provider is installed: spans go through the API's proxy, which
records nothing unless the host process installs a provider of its own (then used as it
is). A step then costs about 20 us, plus about 40 us for its INFO log line; a model's step
reads a Parquet window and takes milliseconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode

PREFIX = "watchkeeper."
EXPORTERS = ("otlp", "console", "none")
LEVEL_VARIABLE = "WATCHKEEPER_LOG_LEVEL"
JSON_HANDLER = "watchkeeper-json-stderr"
Attribute = str | bool | int | float

_TRACER = trace.get_tracer("watchkeeper")   # a proxy: it follows whatever provider is installed later
_CONFIGURE = threading.Lock()
_configured = False
_CURRENT: ContextVar[EvaluationStep | None] = ContextVar("watchkeeper_evaluation_step", default=None)


def configure_tracing(service_name: str = "watchkeeper") -> None:
    """Install the tracer provider OTEL_TRACES_EXPORTER asks for, once per process.

    Later calls do nothing. A provider the host process already installed (for example
    by `opentelemetry-instrument`) is kept as it is, so spans are never exported twice.
    """
    global _configured
    with _CONFIGURE:
        if _configured:
            return
        exporters = _exporters_from_environment()
        if exporters and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            logging.getLogger(__name__).info("tracing: keeping the tracer provider already installed")
        elif exporters:
            trace.set_tracer_provider(_provider(service_name, exporters))
        _configured = True


def _exporters_from_environment() -> list[SpanExporter]:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {', '.join(unknown)} (use otlp, console or none)")
    return [_exporter(name) for name in names if name != "none"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        # stderr, one span per line: stdout belongs to the command's own output (e.g. JSON summaries).
        return ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n")
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL"))
    if protocol not in (None, "", "http/protobuf"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported (use http/protobuf)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter   # pulls in protobuf

    return OTLPSpanExporter()   # endpoint, headers, timeout and TLS from OTEL_EXPORTER_OTLP_*


def _provider(service_name: str, exporters: list[SpanExporter]) -> TracerProvider:
    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES override the default name, as everywhere in OTel.
    resource = Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@dataclass
class EvaluationStep:
    """The step running inside `evaluation_span`: its span and what was recorded on it."""

    span: Span
    identifiers: dict[str, str]
    attributes: dict[str, Attribute | list[Attribute]] = field(default_factory=dict)
    error: BaseException | None = None

    def set(self, **attributes: Any) -> None:
        """Record attributes known only after the work, e.g. ``step.set(rows=len(frame))``."""
        checked = {key: _attribute(key, value) for key, value in attributes.items()}
        self.attributes.update(checked)
        self.span.set_attributes({PREFIX + key: value for key, value in checked.items()})

    def fail(self, error: BaseException) -> None:
        """Mark the step failed when it handles its own error and the run goes on."""
        self.error = error
        self.span.record_exception(error)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _attribute(key: str, value: Any) -> Attribute | list[Attribute]:
    """OTel drops values of other types with only a warning; refuse them instead."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        value = value.item()   # numpy scalars
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return list(value)
    if not isinstance(value, (str, bool, int, float)):
        raise TypeError(f"span attribute {key}={value!r}: expected str, bool, int, float or a list of them")
    return value


@contextmanager
def evaluation_span(step: str, model: str, version: str, window: str, **attributes: Any) -> Iterator[EvaluationStep]:
    """Trace and log one model's evaluation step; exceptions mark the span ERROR and propagate.

    >>> with evaluation_span("drift_report", "wine", "3", "2026-11-08", rows=120) as current:
    ...     current.set(drifted_features=2)
    """
    configure_tracing()
    logger = json_logger("watchkeeper.evaluation")
    identifiers = {"step": step, "model": model, "version": str(version), "window": window}
    with _TRACER.start_as_current_span(step, attributes={PREFIX + k: v for k, v in identifiers.items()}) as span:
        current = EvaluationStep(span, identifiers)
        token = _CURRENT.set(current)
        start = time.perf_counter()
        try:
            current.set(**attributes)
            yield current
        except BaseException as error:
            current.error = error
            raise
        finally:
            duration = time.perf_counter() - start
            span.set_attribute(PREFIX + "duration_s", duration)
            _log_finished(logger, current, duration)
            _CURRENT.reset(token)


def _log_finished(logger: logging.Logger, current: EvaluationStep, duration: float) -> None:
    step, error = current.identifiers["step"], current.error
    extra = {"attributes": {**current.attributes, "duration_s": round(duration, 6)}}
    if error is None:
        logger.info(f"{step} finished", extra=extra)
    else:
        logger.error(f"{step} failed: {type(error).__name__}: {error}", extra=extra,
                     exc_info=(type(error), error, error.__traceback__))


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, the enclosing evaluation
    step's identifiers and trace/span ids, any `extra=` fields, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_correlation(),
        }
        entry.update({key: _jsonable(value) for key, value in vars(record).items() if key not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _correlation() -> dict[str, str]:
    """Trace and span ids of the current span (when one is recording) and the step's identifiers."""
    found: dict[str, str] = {}
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        found.update(trace_id=trace.format_trace_id(context.trace_id), span_id=trace.format_span_id(context.span_id))
    current = _CURRENT.get()
    if current is not None:
        found.update(current.identifiers)
    return found


def _jsonable(value: Any) -> Any:
    """NaN and infinity are not JSON: write them as strings so every line parses anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def json_logger(name: str) -> logging.Logger:
    """The logger `name`, writing JSON lines to stderr at $WATCHKEEPER_LOG_LEVEL (default INFO).

    It does not propagate, so a root handler does not print its records a second time; call
    it for loggers whose records should be JSON, not for a parent of every engine logger.
    The level is read on every call, so it follows the environment of the run at hand.
    """
    logger = logging.getLogger(name)
    if not any(h.name == JSON_HANDLER for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.name = JSON_HANDLER
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    level = _level()
    if logger.level != level:   # setLevel clears every logger's cache: a tenth of a millisecond a call
        logger.setLevel(level)
    return logger


def _level() -> int:
    name = os.environ.get(LEVEL_VARIABLE, "INFO").strip().upper()
    levels = logging.getLevelNamesMapping()
    if name not in levels:
        raise ValueError(f"{LEVEL_VARIABLE}: unknown level {name!r} (use DEBUG, INFO, WARNING or ERROR)")
    return levels[name]
