"""TLS for the endpoints Watchkeeper serves: a server context from certificate files,
reloaded when the files change, so a renewed certificate (cert-manager, certbot) is
picked up without a restart or a dropped connection.

The listening context is never changed after start-up: OpenSSL does not allow a context to be
modified while other threads start handshakes from it (a reload racing a handshake crashed the
process). Each renewal loads into a new context instead, and the listening context's server-name
callback, which OpenSSL calls on every ClientHello, hands each new connection the newest one;
established connections keep the certificate they negotiated. A half-written renewal (the key and
certificate do not match yet) is kept out: the last good pair stays in use and the next check
tries again.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

CHECK_SECONDS = 2.0
log = logging.getLogger(__name__)


class ReloadingServerContext:
    """An SSLContext for a server (`context`) that serves the newest good pair of `certfile`/`keyfile`.

    Optionally requires client certificates signed by `client_ca` (mutual TLS).
    """

    def __init__(self, certfile: Path, keyfile: Path, client_ca: Path | None = None) -> None:
        self.certfile, self.keyfile, self.client_ca = Path(certfile), Path(keyfile), client_ca
        self._stamp = self._stamps()
        self._current = self._load()            # a bad pair fails at start-up
        self.context = self._load()             # what the server listens with: never modified from here on
        self.context.sni_callback = self._newest
        self._stop = threading.Event()

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_ca is not None:
            context.load_verify_locations(cafile=str(self.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        return context

    def _newest(self, connection: ssl.SSLSocket | ssl.SSLObject, server_name: str | None,
                listening: ssl.SSLContext) -> None:
        """Server-name callback: the connection's handshake goes on with the newest loaded pair."""
        connection.context = self._current

    def _stamps(self) -> tuple:
        return tuple((p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_ino) for p in (self.certfile, self.keyfile))

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True when the new pair is in use."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            self._current = self._load()
        except (OSError, ssl.SSLError) as error:   # mid-renewal: keep serving the pair already loaded
            log.warning("TLS certificate %s not reloaded: %s", self.certfile, error)
            return False
        self._stamp = stamp
        log.info("TLS certificate %s reloaded", self.certfile)
        return True

    def watch(self, every: float = CHECK_SECONDS) -> threading.Thread:
        """Check the files every `every` seconds from a daemon thread until `stop()`."""
        def loop() -> None:
            while not self._stop.wait(every):
                self.reload_if_changed()

        thread = threading.Thread(target=loop, name="watchkeeper-tls-reload", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
