"""HMAC signatures for the few stored objects that only a library can serialise.

Most state is stored as data (JSON, arrays). Where a library object must be pickled (river's
compiled ADWIN core has no other form), the bytes are signed with a key from the environment
and refused unless the signature verifies, so a row written into the monitoring store by
someone without the key can never run code in a worker.

A signed blob is ``MAGIC | key id (8 bytes) | HMAC-SHA256 (32 bytes) | payload``. The MAC also
covers a ``purpose`` string, so a blob signed as one kind of object cannot be replayed as
another. Keys rotate: sign with ``WATCHKEEPER_SIGNING_KEY``, verify with it or any key listed
in ``WATCHKEEPER_SIGNING_KEYS_PREVIOUS`` (comma-separated).

>>> import os; os.environ["WATCHKEEPER_SIGNING_KEY"] = "doctest-" + "k" * 32
>>> verify(sign(b"state", "concept.detector"), "concept.detector")
b'state'
"""

from __future__ import annotations

import hashlib
import hmac
import os

SIGNING_KEY_ENV = "WATCHKEEPER_SIGNING_KEY"
PREVIOUS_KEYS_ENV = "WATCHKEEPER_SIGNING_KEYS_PREVIOUS"
MIN_KEY_BYTES = 32
MAGIC = b"WKS1"
_ID, _MAC = 8, 32


class SignatureError(ValueError):
    """A signed blob is missing its key, malformed, or does not verify (one line, user-facing)."""


def _key_bytes(text: str, name: str) -> bytes:
    key = text.strip().encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise SignatureError(f"{name} must be at least {MIN_KEY_BYTES} bytes long")
    return key


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"watchkeeper-key-id" + key).digest()[:_ID]


def signing_key() -> bytes:
    """The current signing key; a clear error when the environment does not provide one."""
    text = os.environ.get(SIGNING_KEY_ENV)
    if not text:
        raise SignatureError(f"{SIGNING_KEY_ENV} is not set: stored detector state cannot be signed or verified")
    return _key_bytes(text, SIGNING_KEY_ENV)


def _verification_keys() -> dict[bytes, bytes]:
    keys = [signing_key()]
    keys += [_key_bytes(k, PREVIOUS_KEYS_ENV) for k in os.environ.get(PREVIOUS_KEYS_ENV, "").split(",") if k.strip()]
    return {_key_id(k): k for k in keys}


def _mac(key: bytes, purpose: str, payload: bytes) -> bytes:
    return hmac.new(key, purpose.encode("utf-8") + b"\x00" + payload, hashlib.sha256).digest()


def sign(payload: bytes, purpose: str) -> bytes:
    """``payload`` with a signature bound to ``purpose`` and the current key."""
    key = signing_key()
    return MAGIC + _key_id(key) + _mac(key, purpose, payload) + payload


def verify(blob: bytes, purpose: str) -> bytes:
    """The payload of a blob signed by :func:`sign` for ``purpose``; SignatureError otherwise."""
    header = len(MAGIC) + _ID + _MAC
    if len(blob) < header or not blob.startswith(MAGIC):
        raise SignatureError(f"{purpose}: not a signed Watchkeeper blob")
    key_id, mac, payload = blob[len(MAGIC):len(MAGIC) + _ID], blob[len(MAGIC) + _ID:header], blob[header:]
    key = _verification_keys().get(key_id)
    if key is None:
        raise SignatureError(f"{purpose}: signed with an unknown key (set {SIGNING_KEY_ENV} or {PREVIOUS_KEYS_ENV})")
    if not hmac.compare_digest(mac, _mac(key, purpose, payload)):
        raise SignatureError(f"{purpose}: signature does not match; the stored state was altered")
    return payload
