"""Gauge families and their Prometheus text exposition (format 0.0.4), served on /metrics.

A 1,000-model fleet with 50 features a model is about 130,000 series. prometheus_client
builds a dict and a named tuple per sample and validates every label *name* of every
sample when rendering (about 10 µs a sample: over a second a scrape). Watchkeeper's
families are gauges with fixed identifier names, so a `Gauge` keeps each sample as one
flat tuple, and `render` escapes only label values that hold a backslash, quote or
newline. `Gauge.to_metric` gives the prometheus_client family for everything else
(registries, the Pushgateway).
"""

from __future__ import annotations

import gzip
import logging
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily

from watchkeeper.security.bearer import SharedToken

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}
log = logging.getLogger(__name__)


@dataclass
class Gauge:
    """One gauge family: its label names, and rows of (label values..., value)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    rows: list[tuple] = field(default_factory=list)

    def add(self, *row) -> None:
        """Add a sample: one value per label name, then the value."""
        self.rows.append(row)

    def to_metric(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for *labels, value in self.rows:
            family.add_metric(labels, value)
        return family


class GaugeSource(Protocol):
    def gauges(self) -> list[Gauge]: ...


def render(gauges: Iterable[Gauge]) -> bytes:
    """The text exposition of `gauges`."""
    out = []
    for gauge in gauges:
        documentation = gauge.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {gauge.name} {documentation}\n# TYPE {gauge.name} gauge\n")
        labels = ",".join(f'{name}="{{}}"' for name in gauge.labels)
        line = f"{gauge.name}{{{{{labels}}}}} {{}}\n" if gauge.labels else f"{gauge.name} {{}}\n"
        out.extend(line.format(*map(_escape, row[:-1]), _number(row[-1])) for row in gauge.rows)
    return "".join(out).encode()


def _number(value: float) -> str:
    text = repr(float(value))
    return _SPECIAL.get(text, text)


def _escape(text: str) -> str:
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return text


def serve(sources: Iterable[GaugeSource], host: str, port: int, token: SharedToken | None = None,
          tls: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve /metrics on (host, port) from a daemon thread; port 0 picks a free one.

    With `token`, a scrape without `Authorization: Bearer <token>` gets 401 and no data;
    with `tls`, the port speaks only TLS (a context that requires client certificates makes
    the handshake itself the authentication: mutual TLS). Stop with
    `server.shutdown(); server.server_close()`.
    """
    handler = type("MetricsHandler", (_MetricsHandler,), {"sources": list(sources), "token": token})
    server = (_TLSServer if tls is not None else ThreadingHTTPServer)((host, port), handler)
    server.tls = tls
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="watchkeeper-exporter", daemon=True)
    thread.start()
    return server, thread


class _TLSServer(ThreadingHTTPServer):
    """Each accepted connection does its TLS handshake in its own thread, so a slow or
    plain-HTTP client delays nobody else; a failed handshake just closes the connection."""

    tls: ssl.SSLContext
    HANDSHAKE_SECONDS = 10

    def finish_request(self, request, client_address) -> None:
        request.settimeout(self.HANDSHAKE_SECONDS)
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            request.close()
            return
        request.settimeout(None)
        try:
            super().finish_request(request, client_address)
        finally:
            request.close()


class _MetricsHandler(BaseHTTPRequestHandler):
    sources: list[GaugeSource]
    token: SharedToken | None

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        if self.token is not None and not self.token.accepts(self.headers.get("Authorization")):
            self._reply(401, b"watchkeeper exporter: a bearer token is required\n", "text/plain; charset=utf-8",
                        {"WWW-Authenticate": 'Bearer realm="watchkeeper"'})
            return
        if self.path.split("?")[0] != "/metrics":
            self._reply(404, b"watchkeeper exporter: metrics are on /metrics\n", "text/plain; charset=utf-8")
            return
        try:
            body = render(gauge for source in self.sources for gauge in source.gauges())
        except Exception as error:  # the scrape fails (Prometheus sets up=0); the server keeps serving
            log.exception("scrape failed")
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self._reply(500, f"scrape failed: {first_line}\n".encode(), "text/plain; charset=utf-8")
            return
        self._reply(200, body, CONTENT_TYPE)

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        if gzipped:
            body = gzip.compress(body, compresslevel=1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the http.server API)
        """Scrapes every few seconds are not news; failures are logged in do_GET."""
