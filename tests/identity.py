"""A stand-in OpenID Connect provider and a private PKI, for tests of authentication and TLS.

No OIDC provider can be installed here, so `Issuer` does what one does for a resource
server: it holds a signing key, publishes its public half as a JWKS over https (a real
`http.server` with a certificate from `Pki`), and mints tokens. The verifier under test
fetches and checks keys exactly as it would against Keycloak or Entra ID.

    pki = Pki(tmp_path)                   # CA + server certificate for 127.0.0.1/localhost
    with Issuer(pki) as idp:
        idp.token(roles=["viewer"])       # a signed, valid token
        idp.env                           # WATCHKEEPER_OIDC_* pointing at it
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from watchkeeper.security.certificates import Issued, issue, new_authority

AUDIENCE = "watchkeeper-test"


class Pki:
    """A CA in `folder` (ca.crt) and a server certificate for loopback (tls.crt, tls.key)."""

    def __init__(self, folder: Path, name: str = "Test CA") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.authority = new_authority(name)
        self.ca = self._write("ca.crt", self.authority.certificate)
        self.cert, self.key = self.server("tls")

    def server(self, stem: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
        return self._pair(stem, issue(self.authority, list(hosts)))

    def client(self, stem: str, name: str = "prometheus") -> tuple[Path, Path]:
        return self._pair(stem, issue(self.authority, [name], client=True))

    def _pair(self, stem: str, issued: Issued) -> tuple[Path, Path]:
        return self._write(f"{stem}.crt", issued.certificate), self._write(f"{stem}.key", issued.key)

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


class Issuer:
    """An OIDC issuer on https://127.0.0.1:PORT whose JWKS is at /jwks.json."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex[:8]
        self.fetches = 0
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}).encode()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.fetches += 1
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(jwks)))
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki.cert), str(pki.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def env(self) -> dict[str, str]:
        return {"WATCHKEEPER_OIDC_ISSUER": self.url, "WATCHKEEPER_OIDC_AUDIENCE": AUDIENCE,
                "WATCHKEEPER_OIDC_JWKS_URL": f"{self.url}/jwks.json",
                "WATCHKEEPER_OIDC_CA_BUNDLE": str(self.pki.ca)}

    def token(self, roles: list[str] | None = None, lifetime: float = 300, key=None, kid: str | None = None,
              algorithm: str = "ES256", **claims) -> str:
        """A token for subject `alice` with `roles`; keyword claims override the defaults."""
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": int(now + lifetime),
                "roles": roles or [], **claims}
        return jwt.encode(body, key if key is not None else self.key, algorithm=algorithm,
                          headers={"kid": kid or self.kid})

    def __enter__(self) -> Issuer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
