"""Verifying OpenID Connect / JWT bearer tokens against the issuer's published keys.

A token is accepted only when its signature verifies with a key from the issuer's JWKS
(fetched over https, cached, refetched when a new key id appears), it was issued by the
configured issuer for the configured audience, and it has not expired. Only asymmetric
algorithms are accepted, so a token "signed" with `none` or with the public key as an
HMAC secret is refused. Errors say what was wrong with the token, never the token itself:
tokens are secrets and must not reach a log.

Settings come from the environment (docs/security.md):
WATCHKEEPER_OIDC_ISSUER, WATCHKEEPER_OIDC_AUDIENCE, WATCHKEEPER_OIDC_JWKS_URL (default
ISSUER/.well-known/jwks.json), WATCHKEEPER_OIDC_ROLES_CLAIM (default `roles`; a dotted
path such as `realm_access.roles` reaches into nested claims), WATCHKEEPER_OIDC_CA_BUNDLE
(a CA file for the JWKS endpoint's certificate, when it is not publicly trusted).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from watchkeeper.security.roles import Role, highest_role
from watchkeeper.alerting.channels.config import insecure_url_problem

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 30   # clock skew between the IdP and this host


class AuthenticationError(Exception):
    """No token, or a token that does not verify (HTTP 401). The message never holds the token."""


class SettingsError(ValueError):
    """The token settings in the environment are missing or unusable (one line, at start-up)."""


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    jwks_url: str
    roles_claim: str = "roles"
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TokenSettings:
        issuer, audience = env.get("WATCHKEEPER_OIDC_ISSUER", ""), env.get("WATCHKEEPER_OIDC_AUDIENCE", "")
        if not issuer or not audience:
            raise SettingsError("set WATCHKEEPER_OIDC_ISSUER and WATCHKEEPER_OIDC_AUDIENCE "
                                "(the identity provider's issuer URL and this service's audience)")
        jwks_url = env.get("WATCHKEEPER_OIDC_JWKS_URL") or issuer.rstrip("/") + "/.well-known/jwks.json"
        problem = insecure_url_problem(jwks_url, allow_http_loopback=False)
        if problem:   # keys fetched in clear text could be swapped on the way
            raise SettingsError(f"the JWKS URL {jwks_url} {problem}")
        ca_bundle = env.get("WATCHKEEPER_OIDC_CA_BUNDLE") or None
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise SettingsError(f"WATCHKEEPER_OIDC_CA_BUNDLE: {ca_bundle} is not a file")
        return cls(issuer, audience, jwks_url, env.get("WATCHKEEPER_OIDC_ROLES_CLAIM") or "roles", ca_bundle)


@dataclass(frozen=True)
class Principal:
    """Who sent a request: the token's subject, the role it grants (None: authenticated, no role) and expiry."""

    subject: str
    role: Role | None
    expires_at: int


class TokenVerifier:
    """Verifies bearer tokens for one issuer and audience; thread-safe, keys cached by PyJWKClient."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
        self._keys = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=10,
                                     ssl_context=context)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthenticationError otherwise."""
        if not token:
            raise AuthenticationError("no bearer token")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=list(ALGORITHMS), audience=self.settings.audience,
                                issuer=self.settings.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWKClientConnectionError:
            raise AuthenticationError("the identity provider's keys could not be fetched") from None
        except jwt.PyJWKClientError:
            raise AuthenticationError("the token is not signed by a key of the issuer") from None
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("the token is from another issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("the token is for another audience") from None
        except jwt.InvalidTokenError as error:
            raise AuthenticationError(f"invalid token ({type(error).__name__})") from None
        return Principal(str(claims["sub"]), highest_role(_role_names(claims, self.settings.roles_claim)),
                         int(claims["exp"]))


def _role_names(claims: Mapping, path: str) -> list[str]:
    """The role names under a dotted claim path: a list of strings, or one space-separated string."""
    value: object = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
