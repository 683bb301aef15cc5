"""One column, whatever holds it (pandas, numpy or pyarrow), read the way the engine needs it.

Numbers come out as a numpy array with missing values as NaN; labels as counts per canonical label
(profile.category_label, so 1, 1.0 and "1" match across sources) or as one label per row. pandas
Series go through pandas; Arrow arrays are read through their buffers and Arrow's compute kernels
(arrow_kernel), never through pandas: importing pandas costs about half a second, more than `watchkeeper drift` spends on
two small files, and converting a column to pandas copies it.

>>> import pyarrow as pa
>>> float_values("x", pa.chunked_array([[1.5, None], [3.0]])).tolist()
[1.5, nan, 3.0]
>>> label_counts(pa.chunked_array([["a", "b", None, "a"]]))
({'a': 2, 'b': 1}, 1)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from watchkeeper.profile import category_label


class ColumnError(ValueError):
    """A column cannot be read as its kind (one line, user-facing)."""


def is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _chunks(values: Any) -> list:
    return list(values.chunks) if hasattr(values, "chunks") else [values]


def float_values(name: str, values: Any) -> np.ndarray:
    """A numeric column as a numpy array, missing values as NaN (integers stay integers when they
    have none); ColumnError if it holds text that is not a number."""
    if is_arrow(values):
        return _arrow_floats(name, values)
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiub":
        return series.to_numpy()
    try:
        return pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise ColumnError(f"column {name!r} holds non-numeric values (numeric in the reference profile)") from None


def arrow_kernel(name: str, *args: Any, options: Any = None) -> Any:
    """The Arrow compute kernel ``name`` (take, cast, value_counts, ...) on ``args``, called through
    pyarrow._compute, which pyarrow.compute re-exports: importing pyarrow.compute wraps every kernel
    in a generated function with a scraped docstring, about 30 ms of a 0.3 s `watchkeeper drift`
    (and pyarrow's own Table.take or Array.cast import it)."""
    from pyarrow._compute import call_function

    return call_function(name, list(args), options)


def _cast(values: Any, kind: Any) -> Any:
    from pyarrow._compute import CastOptions

    return arrow_kernel("cast", values, options=CastOptions.safe(kind))


def _arrow_floats(name: str, values: Any) -> np.ndarray:
    import pyarrow as pa

    kind = values.type
    if pa.types.is_dictionary(kind):
        return _arrow_floats(name, _cast(values, kind.value_type))
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        try:  # decimals, booleans, numbers written as text: what pd.to_numeric would accept
            values = _cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ColumnError(f"column {name!r} holds non-numeric values (numeric in the reference profile)") from None
        kind = values.type
    parts = [_chunk_floats(chunk) for chunk in _chunks(values) if len(chunk)]
    if not parts:
        return np.empty(0, dtype=_numpy_dtype(kind))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _numpy_dtype(kind: Any) -> np.dtype:
    """The numpy dtype of an Arrow integer or float type (pyarrow's to_pandas_dtype imports pandas)."""
    import pyarrow as pa

    letter = "f" if pa.types.is_floating(kind) else "i" if pa.types.is_signed_integer(kind) else "u"
    return np.dtype(f"<{letter}{kind.bit_width // 8}")


def _chunk_floats(chunk: Any) -> np.ndarray:
    """One fixed-width Arrow chunk as numpy, through its buffers: pyarrow's to_numpy imports pandas."""
    dtype = _numpy_dtype(chunk.type)
    validity, data = chunk.buffers()[:2]
    out = np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
    if not chunk.null_count:
        return out
    valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    valid = valid[chunk.offset:chunk.offset + len(chunk)].astype(bool)
    return np.where(valid, out, np.nan)


def arrow_indices(rows: np.ndarray) -> Any:
    """Row positions as an Arrow int64 array, built on the numpy buffer (pa.array would import pandas)."""
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


def label_counts(values: Any) -> tuple[dict[str, int], int]:
    """Counts per canonical label (most frequent first) and the missing count."""
    if not is_arrow(values):
        from watchkeeper.profile import category_counts

        import pandas as pd

        return category_counts(values if isinstance(values, pd.Series) else pd.Series(values, copy=False))
    counts: Counter[str] = Counter()
    distinct = arrow_kernel("value_counts", values)
    for value, n in zip(distinct.field("values").to_pylist(), distinct.field("counts").to_pylist()):
        label = None if value is None else category_label(value)
        if label is not None:
            counts[label] += n
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return ordered, len(values) - sum(ordered.values())


def labels(values: Any) -> np.ndarray:
    """One canonical label per row (None where missing), as an object array."""
    if not is_arrow(values):
        import pandas as pd

        series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
        return series.map(category_label, na_action="ignore").astype(object).where(series.notna(), None).to_numpy()
    codes, names = _arrow_label_codes(values)
    return np.array(names, dtype=object)[codes]


def label_positions(values: Any, wanted: list[str]) -> np.ndarray:
    """Per row, the position of its canonical label in ``wanted``: -1 for any other label, -2 where
    missing. One pass over the rows (an Arrow column: over its dictionary), where comparing an object
    array with each wanted label costs a Python comparison per row and label."""
    index = {label: i for i, label in enumerate(wanted)}
    if is_arrow(values):
        codes, names = _arrow_label_codes(values)
        return np.array([-2 if name is None else index.get(name, -1) for name in names], dtype=np.intp)[codes]
    rows = labels(values)
    return np.fromiter((-2 if label is None else index.get(label, -1) for label in rows), dtype=np.intp, count=len(rows))


def _arrow_label_codes(values: Any) -> tuple[np.ndarray, list[str | None]]:
    """Per row, the index of its canonical label in the returned list, whose last entry (None) stands
    for the missing rows; several values may share a label (1 and 1.0)."""
    import pyarrow as pa

    encoded = arrow_kernel("dictionary_encode", values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = [None if v is None else category_label(v) for v in encoded.dictionary.to_pylist()]
    codes = _chunk_floats(encoded.indices)  # NaN where missing (then float), else the integer codes
    if codes.dtype.kind == "f":
        codes = np.where(np.isnan(codes), len(names), codes).astype(np.int64)
    return codes, [*names, None]
