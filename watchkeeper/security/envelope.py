"""AES-256-GCM envelopes: how inference data and derived state are encrypted at rest.

An envelope is ``MAGIC | key id | wrapped data key | nonce | ciphertext+tag``: a fresh random
data key per object encrypts the bytes, and the KMS (watchkeeper.security.kms) wraps that data
key with its key-encryption key. The key id travels with the data, so a KEK rotation needs no
re-encryption, and a ``purpose`` string ("window", "store.outbox.payload_json", ...) is bound
to both the data key and the ciphertext, so an envelope cannot be moved to another kind of object.

Why whole-object envelopes, and not Parquet modular encryption, for Parquet files too: one
format covers files and store rows (outbox payloads, detector state, references), so there is
one key scheme, one rotation and one error; the footer (column names, statistics, row counts)
is hidden along with the rows; and the objects are small (a daily window is KBs to a few MB),
so decrypting a whole file before pyarrow reads the columns it needs is within noise of the
plain read. The price is paid on large files read a few columns at a time: decryption is
proportional to the whole file, not to the columns read (measured in docs/benchmarks.md). Such
deployments should seal their large windows with Parquet modular encryption behind the same
KMS interface.

Reading an envelope without the key, with a key the KMS lacks, or after the bytes were altered
raises :class:`EncryptionError` with one line that says which and how to fix it.

>>> from watchkeeper.security.kms import EnvKms
>>> kms = EnvKms({"k1": bytes(32)}, "k1")
>>> open_envelope(seal(b"rows", "window", kms), "window", kms)
b'rows'
"""

from __future__ import annotations

import base64
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchkeeper.security.kms import HOW_TO_SET, KEY_BYTES, NONCE_BYTES, KeyUnavailable, Kms, kms_from_env

MAGIC = b"WKE1"
TEXT_PREFIX = "wke1:"        # an envelope stored in a text column, base64


class EncryptionError(ValueError):
    """Encrypted data that cannot be read here: no key, an unknown key id, or altered bytes (one line)."""


def is_sealed(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def seal(plaintext: bytes, purpose: str, kms: Kms) -> bytes:
    """`plaintext` in an envelope under a new data key wrapped by the KMS's current key."""
    key_id = kms.current_key_id()
    data_key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
    wrapped = kms.wrap(key_id, data_key, purpose.encode())
    header = MAGIC + _field(key_id.encode()) + _field(wrapped)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(data_key).encrypt(nonce, plaintext, header + purpose.encode())


def open_envelope(blob: bytes, purpose: str, kms: Kms | None) -> bytes:
    """The plaintext of an envelope made by :func:`seal` for `purpose`; EncryptionError otherwise."""
    if kms is None:
        raise EncryptionError(f"{purpose} is encrypted and no key is configured: {HOW_TO_SET}")
    try:
        key_id, at = _read_field(blob, len(MAGIC))
        wrapped, at = _read_field(blob, at)
        data_key = kms.unwrap(key_id.decode(), wrapped, purpose.encode())
        nonce, ciphertext = blob[at:at + NONCE_BYTES], blob[at + NONCE_BYTES:]
        return AESGCM(data_key).decrypt(nonce, ciphertext, blob[:at] + purpose.encode())
    except KeyUnavailable as error:
        raise EncryptionError(f"{purpose} cannot be decrypted: {error}") from None
    except (InvalidTag, ValueError, struct.error):
        raise EncryptionError(f"{purpose} cannot be decrypted: the envelope is damaged or was altered") from None


def _field(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def _read_field(blob: bytes, at: int) -> tuple[bytes, int]:
    (size,) = struct.unpack_from(">H", blob, at)
    end = at + 2 + size
    if end > len(blob):
        raise ValueError("truncated envelope")
    return blob[at + 2:end], end


# ------------------------------------------------------------------ at rest, as the environment says


def protect(data: bytes, purpose: str, kms: Kms | None = None) -> bytes:
    """`data` sealed when a KMS is configured (argument, else the environment), else as it is."""
    kms = kms or kms_from_env()
    return seal(data, purpose, kms) if kms is not None else data


def reveal(data: bytes, purpose: str, kms: Kms | None = None) -> bytes:
    """The plaintext of `data`: opened when it is an envelope, as it is otherwise (plain files from
    outside and rows written before encryption was turned on stay readable)."""
    return open_envelope(data, purpose, kms or kms_from_env()) if is_sealed(data) else data


def protect_text(text: str, purpose: str, kms: Kms | None = None) -> str:
    """A text column's value, sealed (``wke1:`` + base64) when a KMS is configured."""
    kms = kms or kms_from_env()
    if kms is None:
        return text
    return TEXT_PREFIX + base64.b64encode(seal(text.encode("utf-8"), purpose, kms)).decode("ascii")


def reveal_text(value: str, purpose: str, kms: Kms | None = None) -> str:
    """The plaintext of a text column's value written by :func:`protect_text`."""
    if not value.startswith(TEXT_PREFIX):
        return value
    try:
        blob = base64.b64decode(value[len(TEXT_PREFIX):], validate=True)
    except ValueError:
        raise EncryptionError(f"{purpose} cannot be decrypted: the envelope is damaged or was altered") from None
    return open_envelope(blob, purpose, kms or kms_from_env()).decode("utf-8")
