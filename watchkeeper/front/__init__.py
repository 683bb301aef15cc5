"""The authenticating front of the Dagster UI: every request proves who sent it (an
OIDC/JWT bearer token or a session cookie holding one), and every GraphQL operation is
checked against the sender's role before it reaches Dagster. See docs/security.md."""

from watchkeeper.front.app import Front

__all__ = ["Front"]
