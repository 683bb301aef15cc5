"""Parquet files of rows (inference, labels, windows, reference data), encrypted at rest.

Writers call :func:`write_parquet`: the file is one envelope (watchkeeper.security.envelope)
when a KMS is configured, plain Parquet otherwise, and appears whole (temp file, then rename).
Readers open whatever :func:`parquet_input` gives: the path itself for a plain file, the
decrypted bytes in memory for an envelope, so user-supplied plain files keep working
everywhere and an encrypted file never touches the disk in clear.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchkeeper.security.envelope import MAGIC, open_envelope, protect
from watchkeeper.security.kms import Kms, kms_from_env

if TYPE_CHECKING:
    import pandas as pd

ROWS = "parquet rows"      # the purpose every row file is sealed for


def write_parquet(frame: pd.DataFrame, path: str | Path, kms: Kms | None = None) -> Path:
    """Write `frame` (without its index) to `path`, sealed when a KMS is configured.

    The columns are converted on the calling thread (pyarrow's thread pool cost more than the
    conversion of a 5,000-row window), and float columns are written without a dictionary:
    measured values are nearly all distinct, so pyarrow's dictionary attempt was thrown away after
    costing three quarters of the write (and its fallback made the file larger); labels, ids and
    categories keep theirs. The file is what `DataFrame.to_parquet(index=False)` writes otherwise.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    buffer = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    pq.write_table(table, buffer, use_dictionary=[f.name for f in table.schema if not pa.types.is_floating(f.type)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(protect(buffer.getvalue(), ROWS, kms))
    tmp.replace(path)
    return path


def parquet_input(path: str | Path, kms: Kms | None = None) -> Any:
    """What pyarrow should open for `path`: the path of a plain file, or an in-memory buffer holding
    the decrypted Parquet of an encrypted one (EncryptionError, one line, without its key)."""
    import pyarrow as pa

    with open(path, "rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            return str(path)
        file.seek(0)
        blob = file.read()
    return pa.BufferReader(open_envelope(blob, ROWS, kms or kms_from_env()))


def is_sealed_file(path: str | Path) -> bool:
    with open(path, "rb") as file:
        return file.read(len(MAGIC)) == MAGIC
