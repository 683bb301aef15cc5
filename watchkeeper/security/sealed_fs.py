"""`wksealed://`: an fsspec filesystem that opens sealed row files, for readers that are not ours.

Feast's file offline store reads its sources with dask (fsspec, then pyarrow), so it cannot be
handed decrypted bytes the way watchkeeper.security.sealed_files hands them to pyarrow. Parquet
modular encryption would not help either: Feast passes no decryption properties. Instead a
FileSource names its file as ``wksealed://localhost/<absolute path>``: this filesystem is the
local one, except that a file opened for reading is decrypted in memory when it is an envelope
(plain files pass through), so the offline store holds no readable rows on disk and Feast reads
them with the key from the environment (KMS folder or KEK, as everywhere). Without the key the
read fails with EncryptionError, one line.

It is registered with fsspec by :func:`register` (called before Feast is used: watchkeeper.
feature_store) and by the `fsspec.specs` entry point in pyproject.toml, for the `feast` CLI.
Read-only: writing through it is refused (writers use sealed_files.write_parquet).
"""

from __future__ import annotations

import io
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from watchkeeper.security.envelope import reveal
from watchkeeper.security.sealed_files import ROWS

PROTOCOL = "wksealed"
PREFIX = f"{PROTOCOL}://localhost"   # a host part: Feast keeps a URI with one as it is, else makes it a path


def sealed_uri(path: str | Path) -> str:
    """The `wksealed://` URI of a local file (made absolute)."""
    return PREFIX + Path(path).resolve().as_posix()


def register() -> None:
    """Make `wksealed://` known to fsspec in this process (idempotent)."""
    import fsspec

    fsspec.register_implementation(PROTOCOL, SealedFileSystem, clobber=True)


class SealedFileSystem(LocalFileSystem):
    """The local filesystem, with sealed row files decrypted when opened for reading."""

    protocol = (PROTOCOL,)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        for prefix in (PREFIX, f"{PROTOCOL}://"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        return super()._strip_protocol(path)

    def unstrip_protocol(self, name: str) -> str:
        return PREFIX + self._strip_protocol(name)

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            raise PermissionError(f"{PROTOCOL}:// is read-only ({path})")
        return io.BytesIO(_plaintext(self._strip_protocol(path)))

    def info(self, path, **kwargs):
        found = super().info(path, **kwargs)
        if found["type"] == "file":   # readers size the file to find the Parquet footer: the plaintext's size
            found["size"] = len(_plaintext(found["name"]))
        return found


def _plaintext(path: str) -> bytes:
    """A file's plaintext, decrypted afresh each time (no cache: a plaintext kept in memory would
    outlive the key that opened it); a feature view's file is decrypted in milliseconds."""
    return reveal(Path(path).read_bytes(), ROWS)
