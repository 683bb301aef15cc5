"""TLS for the endpoints Watchkeeper serves: a server context from certificate files,
reloaded when the files change, so a renewed certificate (cert-manager, certbot) is
picked up without a restart or a dropped connection.

OpenSSL applies a context's certificate to each new handshake, so loading the new pair
into the same context is enough: the listening socket stays, established connections
keep the certificate they negotiated. A half-written renewal (the key and certificate do
not match yet) is kept out: the old pair stays in use and the next check tries again.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

CHECK_SECONDS = 2.0
log = logging.getLogger(__name__)


class ReloadingServerContext:
    """An SSLContext for a server that reloads `certfile`/`keyfile` when either file changes.

    Optionally requires client certificates signed by `client_ca` (mutual TLS).
    """

    def __init__(self, certfile: Path, keyfile: Path, client_ca: Path | None = None) -> None:
        self.certfile, self.keyfile = Path(certfile), Path(keyfile)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_ca is not None:
            self.context.load_verify_locations(cafile=str(client_ca))
            self.context.verify_mode = ssl.CERT_REQUIRED
        self._stamp = self._stamps()
        self.context.load_cert_chain(str(self.certfile), str(self.keyfile))   # a bad pair fails at start-up
        self._stop = threading.Event()

    def _stamps(self) -> tuple:
        return tuple((p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_ino) for p in (self.certfile, self.keyfile))

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True when the new pair is in use."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(str(self.certfile), str(self.keyfile))
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
