"""Key-encryption keys (KEKs) behind a small KMS interface: wrap and unwrap data keys by key id.

Every encrypted object has its own random data key (watchkeeper.security.envelope); only that
data key, a few dozen bytes, is wrapped by a KEK. So the KEK never touches data, a cloud KMS
(AWS KMS, Azure Key Vault, GCP KMS, HashiCorp Vault transit) plugs in by implementing
:class:`Kms`'s three methods around its own wrap/unwrap calls, and rotating the KEK costs
nothing: new objects are wrapped with the new key id, old objects name the id they were
wrapped with and still unwrap as long as that key is kept.

Two KMSs ship here:

- :class:`FileKms`, a folder of KEK files and a ``current`` file naming the one used for new
  data (``WATCHKEEPER_KMS_DIR``). The demo keeps one under ``<demo>/secrets/kms``;
  :meth:`FileKms.rotate` adds a key and makes it current.
- :class:`EnvKms`, the KEK from the environment: ``WATCHKEEPER_KEK=<id>:<64 hex digits>`` for
  new data, ``WATCHKEEPER_KEKS_PREVIOUS`` (comma-separated, same form) for older data.

>>> kms = EnvKms({"k1": bytes(32)}, "k1")
>>> wrapped = kms.wrap("k1", b"d" * 32, b"window")
>>> kms.unwrap("k1", wrapped, b"window") == b"d" * 32
True
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KMS_DIR_ENV = "WATCHKEEPER_KMS_DIR"
KEK_ENV = "WATCHKEEPER_KEK"
PREVIOUS_KEKS_ENV = "WATCHKEEPER_KEKS_PREVIOUS"
KEY_BYTES = 32          # AES-256
NONCE_BYTES = 12
KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CURRENT = "current"
SUFFIX = ".kek"
HOW_TO_SET = f"set {KMS_DIR_ENV} or {KEK_ENV} (and {PREVIOUS_KEKS_ENV} for rotated keys)"


class KeyUnavailable(ValueError):
    """A key is missing, malformed or does not unwrap; the message is one line and names no secret."""


class Kms(Protocol):
    """What envelopes need from a key service: the key id for new data, wrap and unwrap by id.

    ``context`` is bound to the wrapped key (AES-GCM associated data, or a cloud KMS's
    encryption context), so a data key wrapped for one kind of object cannot be replayed for another.
    """

    def current_key_id(self) -> str: ...

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes: ...


class LocalKeys:
    """KEKs held in this process (by id), wrapping with AES-256-GCM: the base of both local KMSs."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyUnavailable(f"the current key id {current!r} has no key; {HOW_TO_SET}")
        self.keys, self.current = keys, current

    def current_key_id(self) -> str:
        return self.current

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._key(key_id)).encrypt(nonce, data_key, key_id.encode() + b"\x00" + context)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        try:
            return AESGCM(self._key(key_id)).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                                     key_id.encode() + b"\x00" + context)
        except InvalidTag:
            raise KeyUnavailable(f"key {key_id!r} does not unwrap this data key (wrong key or altered data)") from None

    def _key(self, key_id: str) -> bytes:
        key = self.keys.get(key_id)
        if key is None:
            raise KeyUnavailable(f"no key {key_id!r} in this KMS; {HOW_TO_SET}")
        return key


class EnvKms(LocalKeys):
    """KEKs from the environment (see the module docstring for the variables)."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> EnvKms:
        environ = os.environ if environ is None else environ
        current_id, current = _parse_entry(environ.get(KEK_ENV, ""), KEK_ENV)
        keys = {current_id: current}
        for entry in environ.get(PREVIOUS_KEKS_ENV, "").split(","):
            if entry.strip():
                key_id, key = _parse_entry(entry, PREVIOUS_KEKS_ENV)
                keys.setdefault(key_id, key)
        return cls(keys, current_id)


class FileKms(LocalKeys):
    """KEKs as files ``<id>.kek`` (64 hex digits, owner-only) in one folder, ``current`` naming the id
    for new data. Old key files are kept on rotation: they are what keeps old data readable."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        current = self.folder / CURRENT
        if not current.is_file():
            raise KeyUnavailable(f"{self.folder}: no '{CURRENT}' key file; create one with FileKms.create or {HOW_TO_SET}")
        keys = {p.name.removesuffix(SUFFIX): _hex_key(p.read_text(), p.name) for p in self.folder.glob(f"*{SUFFIX}")}
        super().__init__(keys, current.read_text().strip())

    @classmethod
    def create(cls, folder: str | Path) -> FileKms:
        """The KMS in `folder`, with a first key when it has none yet (the demo's setup)."""
        folder = Path(folder)
        if not (folder / CURRENT).is_file():
            _new_key(folder)
        return cls(folder)

    def rotate(self) -> str:
        """Add a new KEK and make it the one new data is wrapped with; returns its id."""
        key_id = _new_key(self.folder)
        self.keys[key_id] = _hex_key((self.folder / f"{key_id}{SUFFIX}").read_text(), key_id)
        self.current = key_id
        return key_id


def _new_key(folder: Path) -> str:
    """Write a fresh random KEK file (owner-only) and point ``current`` at it; returns its id."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = f"kek-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    path = folder / f"{key_id}{SUFFIX}"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(secrets.token_hex(KEY_BYTES))
    tmp = folder / f".{CURRENT}.tmp"
    tmp.write_text(key_id)
    tmp.replace(folder / CURRENT)        # atomic: a reader sees the old or the new id, never half
    return key_id


def _parse_entry(entry: str, name: str) -> tuple[str, bytes]:
    key_id, _, key = entry.strip().partition(":")
    if not key_id or not key:
        raise KeyUnavailable(f"{name} is not set or not '<key id>:<64 hex digits>'; {HOW_TO_SET}")
    if not KEY_ID.match(key_id):
        raise KeyUnavailable(f"{name}: key id must be 1-64 letters, digits, '.', '_' or '-'")
    return key_id, _hex_key(key, name)


def _hex_key(text: str, name: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(f"{name}: a key must be {2 * KEY_BYTES} hex digits ({KEY_BYTES} bytes)")
    return key


_cache: dict[tuple, Kms] = {}


def kms_from_env() -> Kms | None:
    """The KMS the environment configures (a KMS folder first, then an env KEK), or None: then
    nothing is encrypted on write, and reading anything encrypted fails with how to set a key.

    A folder KMS is re-read when the folder changes (a rotation adds a file), so long-running
    processes pick up a new key without a restart.
    """
    folder = os.environ.get(KMS_DIR_ENV)
    if folder:
        path = Path(folder)
        stamp = (folder, _mtime(path), _mtime(path / CURRENT))
        if stamp not in _cache:
            _cache.clear()
            _cache[stamp] = FileKms(path)
        return _cache[stamp]
    if os.environ.get(KEK_ENV):
        stamp = ("env", os.environ[KEK_ENV], os.environ.get(PREVIOUS_KEKS_ENV, ""))
        if stamp not in _cache:
            _cache.clear()
            _cache[stamp] = EnvKms.from_environ()
        return _cache[stamp]
    return None


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
