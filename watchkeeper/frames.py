"""Data files from outside (Parquet, CSV) read into frames, or refused in one line.

Every reader of data the project did not write goes through here, so a truncated Parquet
file, a CSV in Latin-1 or a header with two columns of the same name is the same clear
DataFileError wherever it is met (the CLI prints it; the pipeline records it as that
model's failure), never a raw pyarrow or pandas traceback.

What is accepted, and how:
- Parquet (.parquet, .pq) with flat columns, plain or encrypted by Watchkeeper
  (watchkeeper.security.sealed_files; decrypted in memory with the configured key): numbers, booleans, strings, timestamps,
  dictionaries. Nested columns (lists, structs, maps) are refused: they are not features.
- CSV (.csv) in UTF-8 (a byte-order mark is allowed). Values are typed by pandas: a column
  holding any text is a text column (categorical), whatever else it holds; "inf" and "-inf"
  are infinities, which the drift engine counts as missing, and blank cells are missing.
- Column names must be unique and not blank: pandas would otherwise rename a CSV's
  duplicate "x" to "x.1" silently, and a Parquet file's duplicates would become one
  two-column "feature".
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the readers: watchkeeper.profile needs column_name_problem, not pandas
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq")
# Files of fewer rows are decoded on the calling thread: handing a 5,000-row window's columns to
# pyarrow's thread pool cost more than decoding them (4.2 -> 2.5 CPU-ms for 5,000 x 25), and a
# fleet already keeps every core busy with one model per worker.
THREADED_ROWS = 100_000
CSV_SUFFIX = ".csv"


class DataFileError(ValueError):
    """A data file that cannot be read as a table; the one-line message starts with its path."""


def column_name_problem(columns: Iterable[Any]) -> str | None:
    """Why these column names cannot name features (blank or duplicate), or None."""
    names = [str(c) for c in columns]
    blank = next((i for i, n in enumerate(names) if not n.strip()), None)
    if blank is not None:
        return f"column {blank + 1} has a blank name"
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        return f"duplicate columns: {', '.join(map(repr, duplicated))}"
    return None


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Parquet or CSV file as a frame (only `columns` when given), or a DataFileError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*PARQUET_SUFFIXES, CSV_SUFFIX):
        raise DataFileError(f"{path}: expected a .parquet or .csv file")
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    if not path.is_file():
        raise DataFileError(f"{path}: not a file")
    return read_parquet(path, columns) if suffix in PARQUET_SUFFIXES else _read_csv(path, columns)


def read_parquet(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One Parquet file (or a folder of parts, in name order) as a frame; a truncated or corrupted file is a DataFileError, not a pyarrow error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from watchkeeper.security.envelope import EncryptionError
    from watchkeeper.security.sealed_files import parquet_input

    path = Path(path)
    try:
        # A folder is a dataset of parts (what `watchkeeper ingest` appends, one part per batch, each
        # sealed like any row file); its hidden and _-prefixed files (parts being written) are not read.
        parts = [pq.ParquetFile(parquet_input(part)) for part in _parts(path)] if path.is_dir() \
            else [pq.ParquetFile(parquet_input(path))]
        for part in parts:   # each part's own names: the union below would hide a duplicate
            _check_names(path, part.schema_arrow.names)
        names = list(dict.fromkeys(name for part in parts for name in part.schema_arrow.names))
        absent = [c for c in columns or () if c not in names]
        if absent:
            raise DataFileError(f"{path}: no column {', '.join(map(repr, absent))} (columns: {', '.join(names)})")
        threads = sum(part.metadata.num_rows for part in parts) >= THREADED_ROWS
        table = pa.concat_tables([part.read(columns=None if columns is None else
                                            [c for c in columns if c in part.schema_arrow.names], use_threads=threads)
                                  for part in parts], promote_options="default")   # a column a part lacks: nulls
        if columns is not None:
            table = table.select(list(columns))
        nested = [f"{f.name!r} ({f.type})" for f in table.schema if pa.types.is_nested(f.type)]
        if nested:
            raise DataFileError(f"{path}: nested columns are not features: {', '.join(nested)}")
        return table.to_pandas(use_threads=threads)
    except EncryptionError as error:
        raise DataFileError(f"{path}: {error}") from None
    except (pa.ArrowException, OSError, EOFError) as error:
        raise DataFileError(f"{path}: cannot be read as Parquet ({_one_line(error)})") from None


def _read_csv(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    try:
        header = _csv_header(path)
        _check_names(path, header)
        absent = [c for c in columns or () if c not in header]
        if absent:
            raise DataFileError(f"{path}: no column {', '.join(map(repr, absent))} (columns: {', '.join(header)})")
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False, usecols=columns)
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not UTF-8 text (invalid byte 0x{error.object[error.start]:02x}); "
                            "save it as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, OSError) as error:
        raise DataFileError(f"{path}: cannot be read as CSV ({_one_line(error)})") from None


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        header = next(csv.reader(file), None)
    if not header:
        raise DataFileError(f"{path}: empty file, expected a header row")
    return header


def _parts(folder: Path) -> list[Path]:
    """A folder's parts in name order (ingestion names them by time); a folder of none is an error."""
    parts = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    if not parts:
        raise DataFileError(f"{folder}: a folder without Parquet parts")
    return parts


def _check_names(path: Path, names: Iterable[Any]) -> None:
    problem = column_name_problem(names)
    if problem:
        raise DataFileError(f"{path}: {problem}")


def _one_line(error: BaseException) -> str:
    """An exception's text on one line (pyarrow and pandas messages can span several)."""
    return " ".join(str(error).split()) or type(error).__name__
