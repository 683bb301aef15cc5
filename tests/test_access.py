"""Who may do what: token verification against a real (stand-in) issuer's JWKS over https,
role names, and the role each GraphQL document needs (watchkeeper.security)."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity import Issuer, Pki
from watchkeeper.security.bearer import SharedToken, bearer_token
from watchkeeper.security.graphql_access import GraphQLRequestError, required_role
from watchkeeper.security.roles import Role, highest_role
from watchkeeper.security.tokens import AuthenticationError, SettingsError, TokenSettings, TokenVerifier

LAUNCH = """mutation Launch($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename } }"""


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    with Issuer(Pki(tmp_path_factory.mktemp("pki"))) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def verifier(idp) -> TokenVerifier:
    return TokenVerifier(TokenSettings.from_env(idp.env))


# --- GraphQL operations -> roles ----------------------------------------------------------------

@pytest.mark.parametrize("document, role", [
    ("{ assetNodes { id } }", Role.VIEWER),
    ("query Q { runsOrError { __typename } }", Role.VIEWER),
    ("subscription S { pipelineRunLogs(runId: \"x\") { __typename } }", Role.VIEWER),
    (LAUNCH, Role.OPERATOR),
    ("mutation { terminateRun(runId: \"r\") { __typename } }", Role.OPERATOR),
    ("mutation { startSensor(sensorSelector: {}) { __typename } }", Role.OPERATOR),
    ("mutation { launchPartitionBackfill(backfillParams: {}) { __typename } }", Role.OPERATOR),
    ("mutation { wipeAssets(assetPartitionRanges: []) { __typename } }", Role.ADMIN),
    ("mutation { deleteRun(runId: \"r\") { __typename } }", Role.ADMIN),
    ("mutation { reloadWorkspace { __typename } }", Role.ADMIN),
    ("mutation { aMutationFromANewerDagster { ok } }", Role.ADMIN),          # unknown: refused below admin
    ("mutation { launch: wipeAssets(assetPartitionRanges: []) { __typename } }", Role.ADMIN),   # alias ignored
    ("mutation { ...W } fragment W on Mutation { wipeAssets(assetPartitionRanges: []) { __typename } }", Role.ADMIN),
    ("mutation { ... on Mutation { deleteRun(runId: \"r\") { __typename } } }", Role.ADMIN),
    ("mutation { launchRun(executionParams: {}) { __typename } wipeAssets(assetPartitionRanges: []) { __typename } }",
     Role.ADMIN),
    ("query Q { assetNodes { id } } " + LAUNCH.replace("Launch", "L2"), Role.OPERATOR),   # every operation counts
])
def test_each_graphql_document_needs_the_role_of_its_strongest_operation(document, role):
    assert required_role(document) is role


@pytest.mark.parametrize("document, message", [
    (None, "no GraphQL query"), ("", "no GraphQL query"), ("mutation {", "not a GraphQL document"),
    ("fragment F on Query { x }", "no operation"), ("mutation { ...Missing }", "unknown fragment"),
    ("{ a }" + " " * 300_000, "longer than"),
])
def test_what_is_not_one_graphql_document_is_refused(document, message):
    with pytest.raises(GraphQLRequestError, match=message):
        required_role(document)


def test_the_highest_watchkeeper_role_wins_and_other_names_are_ignored():
    assert highest_role(["viewer", "admin", "operator"]) is Role.ADMIN
    assert highest_role(["Admin", "offline_access"]) is None   # exact names only


# --- bearer tokens ----------------------------------------------------------------------------------

def test_a_shared_token_accepts_only_itself_and_is_never_shown():
    token = SharedToken("t" * 40)
    assert token.accepts("Bearer " + "t" * 40) and token.accepts("bearer  " + "t" * 40)
    assert not token.accepts("Bearer " + "t" * 39) and not token.accepts("Basic " + "t" * 40)
    assert "t" * 40 not in repr(token)
    assert bearer_token("Bearer abc") == "abc" and bearer_token("abc") == "" and bearer_token(None) == ""
    with pytest.raises(ValueError, match="at least 32"):
        SharedToken("short")


# --- JWT verification ---------------------------------------------------------------------------

def test_a_valid_token_gives_its_subject_and_role(idp, verifier):
    principal = verifier.verify(idp.token(roles=["viewer", "operator"]))
    assert (principal.subject, principal.role) == ("alice", Role.OPERATOR)
    assert verifier.verify(idp.token(roles=["someone-elses-role"])).role is None


def test_roles_can_come_from_a_nested_claim(idp):
    nested = TokenVerifier(TokenSettings.from_env({**idp.env, "WATCHKEEPER_OIDC_ROLES_CLAIM": "realm_access.roles"}))
    assert nested.verify(idp.token(realm_access={"roles": ["admin"]})).role is Role.ADMIN
    assert nested.verify(idp.token(roles=["admin"])).role is None   # the top-level claim is not read


def other_key_token(idp, **kwargs) -> str:
    return idp.token(key=ec.generate_private_key(ec.SECP256R1()), **kwargs)


def hmac_with_public_key(idp) -> str:
    """The classic key-confusion forgery: HS256 keyed with the issuer's public key (built by hand,
    since PyJWT itself refuses to sign it)."""
    import base64
    import hashlib
    import hmac
    import json

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    public = idp.key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.kid}).encode())
    body = part(json.dumps({"iss": idp.url, "aud": "watchkeeper-test", "sub": "eve", "exp": 2_000_000_000,
                            "roles": ["admin"]}).encode())
    signature = part(hmac.new(public, header + b"." + body, hashlib.sha256).digest())
    return (header + b"." + body + b"." + signature).decode()


@pytest.mark.parametrize("forge, reason", [
    (lambda idp: idp.token(roles=["admin"], lifetime=-120), "expired"),
    (lambda idp: idp.token(roles=["admin"], iss="https://evil.example"), "another issuer"),
    (lambda idp: idp.token(roles=["admin"], aud="another-service"), "another audience"),
    (lambda idp: other_key_token(idp, roles=["admin"]), "invalid token"),
    (lambda idp: other_key_token(idp, roles=["admin"], kid="unknown-kid"), "not signed by a key of the issuer"),
    (lambda idp: jwt.encode({"iss": idp.url, "aud": "watchkeeper-test", "sub": "eve", "exp": 2_000_000_000},
                            None, algorithm="none", headers={"kid": idp.kid}), "invalid token"),
    (hmac_with_public_key, "invalid token"),
    (lambda idp: idp.token(roles=["admin"], sub=None), "invalid token"),
    (lambda idp: "not.a.jwt", "invalid token"),
    (lambda idp: "", "no bearer token"),
])
def test_forged_expired_and_foreign_tokens_are_refused_without_echoing_them(idp, verifier, forge, reason):
    token = forge(idp)
    with pytest.raises(AuthenticationError, match=reason) as refused:
        verifier.verify(token)
    assert not token or token not in str(refused.value)


def test_the_jwks_must_be_fetched_over_https_and_trusted(idp, tmp_path):
    with pytest.raises(SettingsError, match="must be https"):
        TokenSettings.from_env({**idp.env, "WATCHKEEPER_OIDC_JWKS_URL": idp.url.replace("https", "http") + "/j"})
    with pytest.raises(SettingsError, match="WATCHKEEPER_OIDC_ISSUER"):
        TokenSettings.from_env({})
    untrusted = TokenVerifier(TokenSettings.from_env({**idp.env, "WATCHKEEPER_OIDC_CA_BUNDLE":
                                                      str(Pki(tmp_path, "Another CA").ca)}))
    with pytest.raises(AuthenticationError, match="could not be fetched"):
        untrusted.verify(idp.token(roles=["viewer"]))
