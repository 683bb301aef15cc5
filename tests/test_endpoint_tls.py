"""TLS on the endpoints Watchkeeper serves, shown on the exporter's server: plain HTTP to the
TLS port fails, certificates are reloaded from their files without a restart, and mutual TLS
admits only clients whose certificate the configured CA signed."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import time

import pytest
import requests
from cryptography import x509

from identity import Pki
from watchkeeper.metrics_export import Gauge, serve
from watchkeeper.security.tls import ReloadingServerContext


class OneGauge:
    def gauges(self) -> list[Gauge]:
        gauge = Gauge("watchkeeper_up", "always 1")
        gauge.add(1.0)
        return [gauge]


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path / "pki")


def served(context: ssl.SSLContext):
    server, thread = serve([OneGauge()], "127.0.0.1", 0, tls=context)
    return server, f"127.0.0.1:{server.server_address[1]}"


def stop(server) -> None:
    server.shutdown()
    server.server_close()


def peer_serial(address: str, pki: Pki, server_hostname: str = "localhost") -> int:
    """The serial of the certificate the server presents; a hostname that is an IP address is
    not sent as SNI (as requests does for https://127.0.0.1)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            pki.client_context().wrap_socket(raw, server_hostname=server_hostname) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def serial(path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_plain_http_to_the_tls_port_fails_and_https_works(pki):
    tls = ReloadingServerContext(pki.cert, pki.key)
    server, address = served(tls.context)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{address}/metrics", timeout=10)
        with pytest.raises(requests.exceptions.SSLError):   # a CA nobody configured is not trusted
            requests.get(f"https://{address}/metrics", timeout=10)
        answer = requests.get(f"https://{address}/metrics", verify=str(pki.ca), timeout=10)
        assert answer.status_code == 200 and "watchkeeper_up 1.0" in answer.text
    finally:
        stop(server)


def test_a_renewed_certificate_is_served_without_a_restart(pki):
    tls = ReloadingServerContext(pki.cert, pki.key)
    tls.watch(every=0.2)
    server, address = served(tls.context)
    try:
        first = serial(pki.cert)
        assert peer_serial(address, pki) == first
        new_cert, new_key = pki.server("renewed")
        shutil.copy(new_key, pki.key)        # a renewal caught half-way: the key no longer matches ...
        time.sleep(0.6)
        assert peer_serial(address, pki) == first    # ... so the old pair keeps serving
        shutil.copy(new_cert, pki.cert)      # the renewal completes
        deadline = time.monotonic() + 10
        while peer_serial(address, pki) == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert peer_serial(address, pki) == serial(new_cert) != first
        assert peer_serial(address, pki, server_hostname="127.0.0.1") == serial(new_cert)   # no SNI sent
        assert requests.get(f"https://{address}/metrics", verify=str(pki.ca), timeout=10).status_code == 200
    finally:
        tls.stop()
        stop(server)


def test_handshakes_during_repeated_reloads_all_succeed(pki):
    """Renewals land while clients connect: the listening context is never modified (OpenSSL does
    not allow it under concurrent handshakes), so every handshake gets one whole pair."""
    tls = ReloadingServerContext(pki.cert, pki.key)
    server, address = served(tls.context)
    pairs = [pki.server(f"renewal-{i}") for i in range(3)]
    known = {serial(pki.cert)} | {serial(cert) for cert, _ in pairs}
    serials, failures, done = [], [], threading.Event()

    def connect() -> None:
        while not done.is_set():
            try:
                serials.append(peer_serial(address, pki))
            except (OSError, ssl.SSLError) as error:    # e.g. a certificate presented with the other pair's key
                failures.append(error)

    clients = [threading.Thread(target=connect) for _ in range(4)]
    try:
        for client in clients:
            client.start()
        for i in range(30):
            cert, key = pairs[i % len(pairs)]
            shutil.copy(key, pki.key)
            shutil.copy(cert, pki.cert)
            tls.reload_if_changed()
        done.set()
        for client in clients:
            client.join(timeout=30)
        assert failures == [] and len(serials) > 4 and set(serials) <= known
    finally:
        tls.stop()
        stop(server)


def test_mutual_tls_admits_only_clients_signed_by_the_configured_ca(pki, tmp_path):
    tls = ReloadingServerContext(pki.cert, pki.key, client_ca=pki.ca)
    server, address = served(tls.context)
    url = f"https://{address}/metrics"
    try:
        with pytest.raises(requests.exceptions.ConnectionError):   # no client certificate: the handshake fails
            requests.get(url, verify=str(pki.ca), timeout=10)
        stranger = Pki(tmp_path / "stranger", "Stranger CA").client("eve")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url, verify=str(pki.ca), cert=tuple(map(str, stranger)), timeout=10)
        prometheus = pki.client("prometheus")
        answer = requests.get(url, verify=str(pki.ca), cert=tuple(map(str, prometheus)), timeout=10)
        assert answer.status_code == 200 and "watchkeeper_up" in answer.text
    finally:
        stop(server)
