"""The fast path of a batch's checks: the whole batch parsed in one C call (pyarrow's JSON reader)
and every check a column operation, so that no Python runs per event.

It decides only what it can decide exactly as the event-by-event path does
(watchkeeper.ingest.events): a row is accepted here only when it is unambiguously valid, and
every other row (or the whole batch, when the reader cannot read it as one table) is handed
back, by position, to the event-by-event path, which gives each rejected event its reason. One
ambiguity is settled by the raw bytes: the reader makes a missing key and a `null` alike, so a
message whose text holds `null` anywhere goes the slow way (a null feature is allowed there, a
null where an event needs a value is not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from watchkeeper.inference_log import INFERENCE, LABELS
from watchkeeper.ingest.messages import Message, payloads

if TYPE_CHECKING:
    from watchkeeper.ingest.events import ModelSchema

POSITION = "__position"     # a row's place in the batch: the two paths' rows are merged in arrival order
ENVELOPE = pa.schema([("type", pa.string()), ("model", pa.string()), ("prediction_id", pa.string()),
                      ("timestamp", pa.string())])
PARSE = pj.ParseOptions(explicit_schema=ENVELOPE, unexpected_field_behavior="infer")
ID_CHARS = 200        # the dedupe index's column width (the event-by-event checks use it too)
NUMERIC = (pa.types.is_int64, pa.types.is_floating)


def fast_rows(schemas: Mapping[str, ModelSchema], messages: Sequence[Message]
              ) -> tuple[dict[tuple[str, str], pd.DataFrame], np.ndarray] | None:
    """Rows accepted per (model, kind), each with its POSITION, and the positions left to the
    event-by-event path; None when the batch does not read as one table (then all of it is)."""
    data = payloads(messages)
    joined = b"\n".join(data)
    if joined.count(b"\n") != len(data) - 1:
        return None          # a message spans lines: the reader could not tell events apart
    try:
        table = pj.read_json(pa.BufferReader(joined), read_options=pj.ReadOptions(use_threads=False,
                                                                                  block_size=len(joined) + 1),
                             parse_options=PARSE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(data):
        return None
    clean = _without_null(data, joined)
    clean &= _valid_ids(table)
    accepted = np.zeros(len(data), dtype=bool)
    rows = {}
    for model in pc.unique(table["model"].filter(clean)).to_pylist():   # a batch's few models, not a string per row
        if model not in schemas:
            continue
        schema, of_model = schemas[model], clean & _equal(table["model"], model)
        for kind, event_type, build in ((INFERENCE, "prediction", _predictions), (LABELS, "label", _labels)):
            mask = of_model & _equal(table["type"], event_type)
            if mask.any():
                frame, ok = build(schema, table, mask)
                accepted |= ok
                if len(frame):
                    rows[(model, kind)] = frame
    return rows, np.flatnonzero(~accepted)


def _equal(column: pa.ChunkedArray, value: str) -> np.ndarray:
    """Rows whose string column holds `value` (a null holds nothing)."""
    return np.asarray(pc.fill_null(pc.equal(column, value), False), dtype=bool)


def _without_null(data: Sequence[bytes], joined: bytes) -> np.ndarray:
    """Messages whose text does not hold `null`: all of them when the batch's text does not (one
    scan of the joined bytes, the common case), else found message by message."""
    if b"null" not in joined:
        return np.ones(len(data), dtype=bool)
    return ~np.asarray(pc.match_substring(pa.array(data, pa.binary()), "null"), dtype=bool)


def _valid_ids(table: pa.Table) -> np.ndarray:
    ids = table["prediction_id"]
    length = pc.fill_null(pc.utf8_length(ids), 0)
    return np.asarray(pc.and_(pc.greater(length, 0), pc.less_equal(length, ID_CHARS)), dtype=bool)


def _predictions(schema: ModelSchema, table: pa.Table, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of `mask` that pass every check of a prediction event, as the log's columns."""
    ok = mask.copy()
    features = _struct(table, "features")
    if features is None:
        return pd.DataFrame(), np.zeros_like(mask)
    ok &= _exactly(features, schema.features)
    if not ok.any():
        return pd.DataFrame(), ok
    for name in schema.features:
        ok &= _typed(features.field(name), _feature_test(schema, name))
    if schema.classes is None:
        ok &= ~_present(table, "proba")
    else:
        proba = _struct(table, "proba")
        if proba is None:
            return pd.DataFrame(), np.zeros_like(mask)
        classes = [str(c) for c in schema.classes]
        ok &= _exactly(proba, classes)
        if not ok.any():
            return pd.DataFrame(), ok
        for c in classes:
            ok &= _in_unit(proba.field(c))
    ok &= _target_ok(schema, table, "prediction")
    at = np.flatnonzero(ok)
    stamps = pd.to_datetime(table["timestamp"].take(at).to_pandas(), utc=True, errors="coerce", format="ISO8601")
    parsed = stamps.notna().to_numpy()
    at, stamps = at[parsed], stamps[parsed].reset_index(drop=True)
    keep = np.zeros_like(mask)
    keep[at] = True
    frame = pd.DataFrame({"timestamp": stamps,
                          "prediction_id": _objects(table["prediction_id"], at)})
    for name in schema.features:
        column = features.field(name).take(at)
        frame[name] = (pd.array(column.to_numpy(zero_copy_only=False), dtype="Int64") if name in schema.coded
                       else _objects(column, None) if name in schema.categorical
                       else column.cast(pa.float64()).to_numpy(zero_copy_only=False))
    frame["prediction"] = _target(schema, table["prediction"].take(at))
    for c in schema.classes or ():
        frame[f"proba_{c}"] = _struct(table, "proba").field(str(c)).take(at).cast(pa.float64()).to_numpy(
            zero_copy_only=False)
    frame[POSITION] = at
    return frame, keep


def _labels(schema: ModelSchema, table: pa.Table, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    keep = mask & _target_ok(schema, table, "label")
    at = np.flatnonzero(keep)
    frame = pd.DataFrame({"prediction_id": _objects(table["prediction_id"], at),
                          "label": _target(schema, table["label"].take(at))})
    frame[POSITION] = at
    return frame, keep


def _struct(table: pa.Table, name: str) -> pa.StructArray | None:
    if name not in table.column_names or not pa.types.is_struct(table[name].type):
        return None
    return table[name].combine_chunks()


def _present(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return np.asarray(pc.is_valid(table[name]), dtype=bool)


def _exactly(struct: pa.StructArray, names: Sequence[str]) -> np.ndarray:
    """Rows whose object has exactly these keys (no null in a clean row: absent is null)."""
    wanted = set(names)
    if not wanted <= {struct.type.field(i).name for i in range(struct.type.num_fields)}:
        return np.zeros(len(struct), dtype=bool)
    ok = np.asarray(pc.is_valid(struct), dtype=bool)
    for i in range(struct.type.num_fields):
        child = struct.field(i)
        present = np.asarray(pc.is_valid(child), dtype=bool)
        ok &= present if struct.type.field(i).name in wanted else ~present
    return ok


def _feature_test(schema: ModelSchema, name: str):
    if name in schema.coded:
        return (pa.types.is_int64,)
    if name in schema.categorical:
        return (pa.types.is_string,)
    return NUMERIC


def _typed(column: pa.Array, tests) -> np.ndarray:
    """All rows when the column's type is allowed, none otherwise (those go the slow way)."""
    return np.full(len(column), any(t(column.type) for t in tests), dtype=bool)


def _in_unit(column: pa.Array) -> np.ndarray:
    if not any(t(column.type) for t in NUMERIC):
        return np.zeros(len(column), dtype=bool)
    inside = pc.and_(pc.greater_equal(column, 0), pc.less_equal(column, 1))
    return np.asarray(pc.fill_null(inside, False), dtype=bool)


def _target_ok(schema: ModelSchema, table: pa.Table, name: str) -> np.ndarray:
    """Rows whose prediction (or label) is one of the classes, or a finite number for a regressor;
    only integer or string classes and integer or float numbers are taken here."""
    n = table.num_rows
    if name not in table.column_names:
        return np.zeros(n, dtype=bool)
    column = table[name]
    if schema.classes is None:
        if not any(t(column.type) for t in NUMERIC):
            return np.zeros(n, dtype=bool)
        return np.asarray(pc.fill_null(pc.is_finite(column.cast(pa.float64())), False), dtype=bool)
    if all(isinstance(c, int) and not isinstance(c, bool) for c in schema.classes):
        allowed, test = pa.array(schema.classes, pa.int64()), pa.types.is_int64
    elif all(isinstance(c, str) for c in schema.classes):
        allowed, test = pa.array(schema.classes, pa.string()), pa.types.is_string
    else:
        return np.zeros(n, dtype=bool)
    if not test(column.type):
        return np.zeros(n, dtype=bool)
    return np.asarray(pc.fill_null(pc.is_in(column, value_set=allowed), False), dtype=bool)


def _target(schema: ModelSchema, column) -> np.ndarray:
    """As events.py's _target_column types them."""
    if schema.classes is None:
        return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_int64(column.type):
        return column.to_numpy(zero_copy_only=False).astype("int64")
    return _objects(column, None)


def _objects(column, at: np.ndarray | None) -> np.ndarray:
    """Python strings in an object array, as the slow path builds them."""
    if at is not None:
        column = column.take(at)
    return column.to_numpy(zero_copy_only=False).astype(object, copy=False)
