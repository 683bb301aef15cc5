"""Reference and window files (Parquet, CSV) read straight into the engine (Parquet without pandas).

What `watchkeeper drift` does with files, at the speed of the hardware: the reference is profiled a
group of columns at a time (Parquet reads only those column chunks, so memory is a few columns,
not the file), the window is streamed in record batches into the sketch, and both hand a random
sample of their rows to the multivariate detectors on the way (``RowSample``), so no file is read
twice. Columns go through watchkeeper.columns (Arrow buffers and compute kernels): the result is the
profile and report that fit_profile and evaluate_drift give on the same data read by pandas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.columns import ColumnError, arrow_indices, arrow_kernel, float_values, label_counts
from watchkeeper.decision import DriftConfig
from watchkeeper.drift import DriftInputError, check_columns, report_from_sketch
from watchkeeper.frames import column_name_problem
from watchkeeper.parallel import WORKERS, parallel_map, prefetch, read_ahead
from watchkeeper.profile import (
    CATEGORICAL,
    LOW_CARDINALITY,
    NUMERIC,
    ReferenceProfile,
    categorical_profile,
    numeric_profile,
)
from watchkeeper.report import DriftReport
from watchkeeper.sketch import WindowSketch

PARQUET = (".parquet", ".pq")
# columns read together: about this many bytes of float64 values (of the file for the reference, of a
# row group for the window), at least one per thread. Smaller groups mean smaller buffers: 100,000 x 60
# against a profile took 0.37-0.38 s and 124 MB with 4 MB, 0.45-0.56 s and 195 MB with 16 MB (the
# kernel's time faulting the larger buffers in), for the same user time (1,000,000 x 100: 0.3-0.4 s less)
GROUP_BYTES = 4 << 20


class FileInputError(DriftInputError):
    """A file cannot be read (one line, user-facing)."""


@dataclass
class Source:
    """A Parquet file (read lazily, by columns and batches) or a CSV file (read whole by pyarrow)."""

    path: Path
    parquet: Any = None  # pyarrow.parquet.ParquetFile
    table: Any = None  # pyarrow.Table

    @property
    def names(self) -> list[str]:
        return (self.parquet.schema_arrow if self.parquet is not None else self.table.schema).names

    @property
    def num_rows(self) -> int:
        return self.parquet.metadata.num_rows if self.parquet is not None else self.table.num_rows

    @property
    def largest_row_group(self) -> int:
        """Rows of the largest row group: what pyarrow decodes at once (a CSV file is one group)."""
        if self.parquet is None:
            return self.table.num_rows
        metadata = self.parquet.metadata
        return max((metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)), default=0)

    def read(self, columns: list[str]) -> Any:
        """These columns of every row, as a pyarrow Table."""
        return self._guard(lambda: self.parquet.read(columns=columns) if self.parquet is not None
                           else self.table.select(columns))

    def batches(self, columns: list[str], batch_size: int) -> Iterator[Any]:
        """Tables (CSV: record batches) of these columns, ``batch_size`` rows each but the last.

        A Parquet file is decoded and pre-buffered one row group at a time: iter_batches over the
        whole file pre-buffers every row group's column chunks up front (1,000,000 x 100 floats:
        1.4 GB peak instead of 0.5 GB). Batches still start at multiples of ``batch_size`` across
        row groups, as that reader's do, so sums over batches add in the same order.
        """
        if self.parquet is None:
            yield from self.table.select(columns).to_batches(max_chunksize=batch_size)
            return
        import pyarrow as pa

        pending, held = [], 0  # decoded batches not yet handed out: fewer than batch_size rows
        for group in range(self.parquet.num_row_groups):
            iterator = self.parquet.iter_batches(batch_size=batch_size, row_groups=[group], columns=columns)
            while (batch := self._guard(lambda: next(iterator, None))) is not None:
                pending.append(batch)
                held += batch.num_rows
                while held >= batch_size:
                    joined = pa.Table.from_batches(pending)  # no copy: the batches become chunks
                    yield joined.slice(0, batch_size)
                    pending, held = joined.slice(batch_size).to_batches(), held - batch_size
        if held:
            yield pa.Table.from_batches(pending)

    def _guard(self, read):
        import pyarrow as pa

        try:
            return read()
        except (OSError, pa.ArrowException) as error:
            raise FileInputError(f"{self.path}: cannot be read ({' '.join(str(error).split())})") from None


def open_file(path: str | Path) -> Source:
    """A Parquet or CSV file ready to read, or a one-line FileInputError.

    Parquet is read by pyarrow alone. CSV goes through watchkeeper.frames (pandas), so that its
    documented rules hold here too: UTF-8 only, a cut last row padded, text columns typed as pandas
    types them (then handed over as Arrow).
    """
    import pyarrow as pa

    from watchkeeper.frames import DataFileError
    from watchkeeper.security.envelope import EncryptionError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*PARQUET, ".csv"):
        raise FileInputError(f"{path}: expected a .parquet or .csv file")
    if not path.exists():
        raise FileInputError(f"{path}: no such file")
    if not path.is_file():
        raise FileInputError(f"{path}: not a file")
    try:
        if suffix in PARQUET:
            import pyarrow.parquet as pq

            from watchkeeper.security.sealed_files import parquet_input

            # pre-buffering reads each row group's column chunks in one go: 10x faster than chunk by chunk
            # on a busy machine (100,000 x 60: 0.35 s against 3.8 s), for one row group of extra memory
            source = Source(path, parquet=pq.ParquetFile(parquet_input(path), pre_buffer=True))
        else:
            from watchkeeper.frames import read_table

            source = Source(path, table=pa.Table.from_pandas(read_table(path), preserve_index=False))
    except DataFileError as error:
        raise FileInputError(str(error)) from None
    except EncryptionError as error:
        raise FileInputError(f"{path}: {error}") from None
    except (OSError, pa.ArrowException) as error:
        kind = "Parquet" if suffix in PARQUET else "CSV"
        raise FileInputError(f"{path}: cannot be read as {kind} ({' '.join(str(error).split())})") from None
    schema = source.parquet.schema_arrow if source.parquet is not None else source.table.schema
    problem = column_name_problem(schema.names)  # the rules of watchkeeper.frames, shared
    nested = [f"{f.name!r} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if problem or nested:
        raise FileInputError(f"{path}: {problem or 'nested columns are not features: ' + ', '.join(nested)}")
    return source


class RowSample:
    """A uniform random sample of up to ``max_rows`` rows of a file, gathered from the tables or
    batches that pass by in order (``collect``), so that sampling costs no extra read."""

    def __init__(self, n_rows: int, max_rows: int, seed: int = 0) -> None:
        chosen = np.arange(n_rows) if n_rows <= max_rows else np.random.default_rng(seed).choice(n_rows, max_rows, replace=False)
        self.rows = np.sort(chosen)
        self.parts: dict[str, list[Any]] = {}

    def collect(self, table: Any, start: int = 0) -> None:
        """Keep the sampled rows among rows start .. start + len(table) of ``table``'s columns."""
        lo, hi = np.searchsorted(self.rows, [start, start + table.num_rows])
        if hi > lo:
            picked = arrow_kernel("take", table, arrow_indices(self.rows[lo:hi] - start))
            for name in picked.column_names:
                self.parts.setdefault(name, []).append(picked.column(name))

    def columns(self) -> dict[str, Any]:
        """The sampled rows, one pyarrow ChunkedArray per column."""
        import pyarrow as pa

        return {name: pa.chunked_array([c for part in parts for c in _chunks(part)]) for name, parts in self.parts.items()}


def _chunks(column: Any) -> list:
    return list(column.chunks) if hasattr(column, "chunks") else [column]


def _group(rows: int) -> int:
    """Columns per group when each column holds ``rows`` values at once (GROUP_BYTES)."""
    return max(WORKERS, GROUP_BYTES // max(8 * rows, 1))


def fit_profile_file(source: Source, sample: RowSample | None = None) -> ReferenceProfile:
    """The profile of every column of a file, as fit_profile gives on the same file read by pandas."""
    names = source.names
    group = _group(source.num_rows)
    groups = [names[first:first + group] for first in range(0, len(names), group)]
    features = {}
    pending = prefetch(lambda: source.read(groups[0])) if groups else None
    for number in range(len(groups)):
        table = pending()
        if number + 1 < len(groups):  # decode the next group while this one is profiled
            pending = prefetch(lambda columns=groups[number + 1]: source.read(columns))
        if sample is not None:
            sample.collect(table)
        columns = table.column_names  # profiled on every core: sorting and Arrow kernels release the GIL
        features.update(zip(columns, parallel_map(lambda name: _feature(source, name, table.column(name)), columns)))
    return ReferenceProfile(features, source.num_rows)


def _feature(source: Source, name: str, column: Any):
    import pyarrow as pa

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return categorical_profile(name, *label_counts(column))  # as infer_kinds: not a number, a label
    x = np.asarray(float_values(name, column), dtype=np.float64)
    ordered = np.sort(x)  # NaN sort last, -inf first and +inf just before them: slices, not copies
    present = ordered[:np.searchsorted(ordered, np.nan)]
    if np.count_nonzero(np.diff(present)) + bool(present.size) <= LOW_CARDINALITY:
        return categorical_profile(name, *label_counts(column))  # codes and flags: few distinct numbers
    finite = present[np.searchsorted(present, -np.inf, side="right"):np.searchsorted(present, np.inf)]
    return numeric_profile(name, finite, len(x) - len(finite))


def evaluate_file(profile: ReferenceProfile, source: Source, config: DriftConfig = DriftConfig(),
                  sample: RowSample | None = None, batch_size: int | None = None) -> DriftReport:
    """Stream a window file through the sketch in record batches: memory is one batch of a group
    of columns.

    Only the profiled columns are read, a group of columns at a time (each group streamed over every
    row, as fit_profile_file reads the reference): pyarrow decodes a whole Parquet row group of the
    columns it reads at once (about three times their size at peak), so memory is bounded by
    GROUP_BYTES of a row group, not by the file. Every group is cut into the same batches, so each
    column's sums add in the same order as in one pass over all columns.
    """
    ignored = check_columns(profile, source.names, source.num_rows)
    sketch = WindowSketch(profile)
    names = list(profile.features)
    n_numeric = sum(f.kind == NUMERIC for f in profile.features.values())
    batch_size = batch_size or sketch.block_rows(n_numeric)
    group = _group(source.largest_row_group)
    try:
        for first in range(0, len(names), group):
            start = 0
            for batch in read_ahead(source.batches(names[first:first + group], batch_size)):
                sketch.add({name: batch.column(name) for name in batch.column_names}, batch.num_rows,
                           count_rows=first == 0)
                if sample is not None:
                    sample.collect(batch, start)
                start += batch.num_rows
    except ColumnError as error:
        raise DriftInputError(str(error)) from None
    return report_from_sketch(profile, sketch, config, ignored)


def kinds(profile: ReferenceProfile) -> dict[str, str]:
    """Feature name -> kind, as the multivariate detectors take them."""
    return {name: f.kind for name, f in profile.features.items() if f.kind in (NUMERIC, CATEGORICAL)}
