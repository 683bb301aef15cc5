"""Inference events and late labels as they arrive on a stream, checked against each model's reference.

An event is one JSON object per message:

    {"type": "prediction", "model": "churn", "prediction_id": "p-1", "timestamp": "2026-12-03T10:00:00Z",
     "prediction": 1, "features": {"tenure": 12.0, "plan": "gold"}, "proba": {"0": 0.2, "1": 0.8}}
    {"type": "label", "model": "churn", "prediction_id": "p-1", "label": 0}

`EventChecker.check` takes a whole batch of messages and sorts it into accepted rows, one frame
per (model, kind), and dead letters with their reason. The model's stored reference decides
what is valid: the features it reads (no more, no fewer) and their kind (numbers for numeric
features; for categorical ones, integer codes or strings as in the reference), the classes a
classifier predicts, and `proba` (optional) naming exactly those classes. A redelivered event
is not an error here: duplicates by prediction id are the writer's business (watchkeeper.ingest.writer).

Checks are by column where they can be (timestamps parse in one call per batch), and each
rejected event gets its own reason, so one bad producer never hides the others' events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pandas as pd

from watchkeeper.inference_log import INFERENCE, LABELS
from watchkeeper.profile_schema import CATEGORICAL
from watchkeeper.reference import ModelReference

PREDICTION, LABEL = "prediction", "label"
KIND_OF_TYPE = {PREDICTION: INFERENCE, LABEL: LABELS}
ID_CHARS = 200        # the dedupe index's column width


@dataclass(frozen=True)
class Message:
    """One message of a stream: its id there (unique within the source), its bytes, and what
    the source needs to acknowledge it."""

    id: str
    data: bytes
    handle: object = None


@dataclass
class Checked:
    """A batch sorted out: rows per (model, kind) in arrival order, and (message id, reason, payload)."""

    rows: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    dead: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSchema:
    """What a model's events must look like, from its stored reference."""

    version: str
    features: tuple[str, ...]
    coded: frozenset[str]          # categorical features whose categories are integer codes
    categorical: frozenset[str]
    classes: tuple | None          # None: a regressor

    @classmethod
    def of(cls, reference: ModelReference) -> ModelSchema:
        kinds = {name: f for name, f in reference.profile.features.items()}
        categorical = frozenset(n for n in reference.features if kinds[n].kind == CATEGORICAL)
        coded = frozenset(n for n in categorical if _integer_codes(kinds[n].categories or {}))
        classes = tuple(reference.classes) if reference.is_classifier else None
        return cls(reference.version, tuple(reference.features), coded, categorical, classes)


def _integer_codes(categories: Mapping[str, int]) -> bool:
    labels = [c for c in categories if c != "__other__"]
    return bool(labels) and all(c.lstrip("-").isdigit() for c in labels)


class EventChecker:
    """Checks batches of events against the schemas of the monitored models."""

    def __init__(self, schemas: Mapping[str, ModelSchema]) -> None:
        self.schemas = dict(schemas)

    def check(self, messages: Sequence[Message]) -> Checked:
        checked = Checked()
        groups: dict[tuple[str, str], list[tuple[Message, dict]]] = {}
        for message in messages:
            event, reason = self._parse(message.data)
            if reason is not None:
                checked.dead.append((message.id, reason, _text(message.data)))
            else:
                groups.setdefault((event["model"], KIND_OF_TYPE[event["type"]]), []).append((message, event))
        for (model, kind), found in groups.items():
            schema = self.schemas[model]
            frame, dead = (self._predictions if kind == INFERENCE else self._labels)(schema, found)
            checked.dead += dead
            if len(frame):
                checked.rows[(model, kind)] = frame
        return checked

    def _parse(self, data: bytes) -> tuple[dict, None] | tuple[None, str]:
        """The event, or why it is not one (checks shared by predictions and labels)."""
        try:
            event = _decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            return None, f"not JSON ({str(error).splitlines()[0][:120]})"
        if not isinstance(event, dict):
            return None, "not a JSON object"
        kind = event.get("type")
        if kind not in KIND_OF_TYPE:
            return None, f"type must be {PREDICTION!r} or {LABEL!r}"
        model = event.get("model")
        if not isinstance(model, str) or model not in self.schemas:
            return None, f"unknown model {str(model)[:100]!r} (no stored reference)"
        pid = event.get("prediction_id")
        if not isinstance(pid, str) or not pid or len(pid) > ID_CHARS:
            return None, f"prediction_id must be a non-empty string of at most {ID_CHARS} characters"
        return event, None

    def _predictions(self, schema: ModelSchema, found: list[tuple[Message, dict]]) -> tuple[pd.DataFrame, list]:
        dead, kept = [], []
        for message, event in found:
            reason = _prediction_problem(schema, event)
            if reason:
                dead.append((message.id, reason, _text(message.data)))
            else:
                kept.append(event)
        stamps = pd.to_datetime(pd.Series([e.get("timestamp") for e in kept], dtype=object), utc=True,
                                errors="coerce", format="ISO8601")
        bad = stamps.isna().to_numpy()
        if bad.any():
            ids = {id(e) for e, b in zip(kept, bad) if b}
            dead += [(m.id, "timestamp is not an ISO 8601 time", _text(m.data)) for m, e in found if id(e) in ids]
            kept, stamps = [e for e, b in zip(kept, bad) if not b], stamps[~bad]
        columns: dict[str, object] = {"timestamp": stamps.reset_index(drop=True),
                                      "prediction_id": [e["prediction_id"] for e in kept]}
        for name in schema.features:
            values = [e["features"].get(name) for e in kept]
            columns[name] = (pd.array(values, dtype="Int64") if name in schema.coded
                             else pd.array(values, dtype="string") if name in schema.categorical
                             else np.array([np.nan if v is None else v for v in values], dtype="float64"))
        columns["prediction"] = _target_column(schema, [e["prediction"] for e in kept])
        for c in schema.classes or ():
            columns[f"proba_{c}"] = np.array([(e.get("proba") or {}).get(str(c), np.nan) for e in kept], dtype="float64")
        return pd.DataFrame(columns), dead

    def _labels(self, schema: ModelSchema, found: list[tuple[Message, dict]]) -> tuple[pd.DataFrame, list]:
        dead, kept = [], []
        for message, event in found:
            reason = _target_problem(schema, event, LABEL)
            if reason:
                dead.append((message.id, reason, _text(message.data)))
            else:
                kept.append(event)
        frame = pd.DataFrame({"prediction_id": [e["prediction_id"] for e in kept],
                              "label": _target_column(schema, [e["label"] for e in kept])})
        return frame, dead


def _prediction_problem(schema: ModelSchema, event: dict) -> str | None:
    """Why a prediction event does not fit its model, or None (the timestamp is checked by column)."""
    features = event.get("features")
    if not isinstance(features, dict):
        return "features must be a JSON object"
    missing = [f for f in schema.features if f not in features]
    if missing:
        return f"missing features: {', '.join(missing[:10])}"
    extra = [str(f)[:60] for f in features if f not in schema.features]
    if extra:
        return f"features the model does not read: {', '.join(extra[:10])}"
    for name in schema.features:
        value = features[name]
        if value is not None and (problem := _value_problem(schema, name, value)):
            return f"feature {name!r}: {problem}"
    proba = event.get("proba")
    if proba is not None:
        if schema.classes is None:
            return "proba is for classifiers; this model is a regressor"
        if not isinstance(proba, dict) or set(proba) != {str(c) for c in schema.classes} \
                or not all(_is_number(p) and 0 <= p <= 1 for p in proba.values()):
            return f"proba must map each class ({', '.join(map(str, schema.classes))}) to a number in [0, 1]"
    return _target_problem(schema, event, PREDICTION)


def _value_problem(schema: ModelSchema, name: str, value: object) -> str | None:
    if name in schema.coded:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer code"
    if name in schema.categorical:
        return None if isinstance(value, str) else "must be a string category"
    return None if _is_number(value) else "must be a number"


def _target_problem(schema: ModelSchema, event: dict, key: str) -> str | None:
    if key not in event:
        return f"no {key}"
    value = event[key]
    if schema.classes is None:
        return None if _is_number(value) and math.isfinite(value) else f"{key} must be a finite number"
    if isinstance(value, bool) or value not in schema.classes:
        return f"{key} {str(value)[:60]!r} is not one of the classes {', '.join(map(str, schema.classes))}"
    return None


def _target_column(schema: ModelSchema, values: list) -> np.ndarray:
    """Predictions and labels typed as the model's classes (integers or strings), or as numbers."""
    if schema.classes is None:
        return np.array(values, dtype="float64")
    if all(isinstance(c, int) for c in schema.classes):
        return np.array(values, dtype="int64")
    return np.array(values, dtype=object)


_decode = msgspec.json.Decoder().decode   # several times faster than json.loads on small objects


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
