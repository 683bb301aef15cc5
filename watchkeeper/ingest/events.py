"""Inference events and late labels as they arrive on a stream, checked against each model's reference.

An event is one JSON object per message:

    {"type": "prediction", "model": "churn", "prediction_id": "p-1", "timestamp": "2026-12-03T10:00:00Z",
     "prediction": 1, "features": {"tenure": 12.0, "plan": "gold"}, "proba": {"0": 0.2, "1": 0.8}}
    {"type": "label", "model": "churn", "prediction_id": "p-1", "label": 0}

`EventChecker.check` takes a whole batch of messages and sorts it into accepted rows, one frame
per (model, kind), and dead letters with their reason. The model's stored reference decides
what is valid: the features it reads (no more, no fewer) and their kind (numbers for numeric
features; for categorical ones, integer codes or strings as in the reference), the classes a
classifier predicts, and (classifiers only) `proba` naming exactly those classes. A redelivered event
is not an error here: duplicates by prediction id are the writer's business (watchkeeper.ingest.writer).

Checks are by column where they can be (timestamps parse in one call per batch), and each
rejected event gets its own reason, so one bad producer never hides the others' events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import pandas as pd

from watchkeeper.inference_log import INFERENCE, LABELS
from watchkeeper.ingest.columnar import ID_CHARS, POSITION, fast_rows
from watchkeeper.ingest.messages import Message
from watchkeeper.profile_schema import CATEGORICAL
from watchkeeper.reference import ModelReference

PREDICTION, LABEL = "prediction", "label"
KIND_OF_TYPE = {PREDICTION: INFERENCE, LABEL: LABELS}
NUMBER = frozenset({int, float, type(None)})     # None: a missing value
CODED = frozenset({int, type(None)})
CATEGORY = frozenset({str, type(None)})
CLASS_TYPES = frozenset({int, str, float, type(None)})


@dataclass
class Checked:
    """A batch sorted out: rows per (model, kind) in arrival order, and (message id, reason, payload)."""

    rows: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    dead: list[tuple[str, str, str]] = field(default_factory=list)


class Event(msgspec.Struct):
    """The envelope every event shares, decoded and typed in one C call per message (msgspec);
    what depends on the model (features, classes) is checked by column afterwards."""

    type: Literal["prediction", "label"]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    prediction_id: Annotated[str, msgspec.Meta(min_length=1, max_length=ID_CHARS)]
    timestamp: str | None = None
    prediction: Any = msgspec.UNSET
    label: Any = msgspec.UNSET
    features: Any = None
    proba: Any = None


_decode = msgspec.json.Decoder(Event).decode


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
        """The batch's rows per (model, kind) in arrival order, and its dead letters: what the
        columnar path (watchkeeper.ingest.columnar) accepts, plus the rest checked event by event."""
        fast = fast_rows(self.schemas, messages)
        if fast is None:
            rows, rest = {}, np.arange(len(messages))
        else:
            rows, rest = fast
        checked = self._check_each([messages[i] for i in rest], rest)
        for key, frame in rows.items():
            slow = checked.rows.get(key)
            if slow is not None:
                frame = pd.concat([frame, slow], ignore_index=True).sort_values(POSITION, kind="stable")
            checked.rows[key] = frame
        for key, frame in checked.rows.items():
            checked.rows[key] = frame.drop(columns=POSITION).reset_index(drop=True)
        return checked

    def _check_each(self, messages: Sequence[Message], positions: np.ndarray) -> Checked:
        """Event by event, with each rejected event's reason; rows keep their batch POSITION."""
        checked = Checked()
        groups: dict[tuple[str, str], list[tuple[Message, Event]]] = {}
        places: dict[tuple[str, str], list[int]] = {}
        for message, position in zip(messages, positions):
            try:
                event = _decode(message.data)
            except msgspec.ValidationError as error:
                checked.dead.append((message.id, f"not an event: {_first_line(error)}", _text(message.data)))
                continue
            except (msgspec.DecodeError, UnicodeDecodeError) as error:
                checked.dead.append((message.id, f"not JSON ({_first_line(error)})", _text(message.data)))
                continue
            if event.model not in self.schemas:
                checked.dead.append((message.id, f"unknown model {event.model[:100]!r} (no stored reference)",
                                     _text(message.data)))
            else:
                groups.setdefault((event.model, KIND_OF_TYPE[event.type]), []).append((message, event))
                places.setdefault((event.model, KIND_OF_TYPE[event.type]), []).append(position)
        for (model, kind), found in groups.items():
            schema = self.schemas[model]
            frame, dead = (self._predictions if kind == INFERENCE else self._labels)(schema, found,
                                                                                     np.array(places[(model, kind)]))
            checked.dead += dead
            if len(frame):
                checked.rows[(model, kind)] = frame
        return checked

    def _predictions(self, schema: ModelSchema, found: list[tuple[Message, Event]], places: np.ndarray
                     ) -> tuple[pd.DataFrame, list]:
        """Rows of the well-formed prediction events; each other one a dead letter with its reason.

        Checks go by column: the common case (every value of a column of an allowed type) costs
        one pass in C; only a column that fails is looked at event by event, for the reasons."""
        reasons: dict[int, str] = {}
        wanted = frozenset(schema.features)
        for i, (_, event) in enumerate(found):
            features = event.features
            if not isinstance(features, dict) or features.keys() != wanted:
                reasons[i] = _features_problem(schema, features)
            elif (problem := _proba_problem(schema, event.proba)) is not None:
                reasons[i] = problem
            elif event.prediction is msgspec.UNSET:
                reasons[i] = "no prediction"
        ok = [e if i not in reasons else None for i, (_, e) in enumerate(found)]
        columns: dict[str, object] = {}
        for name in schema.features:
            values = [e.features[name] if e is not None else None for e in ok]
            allowed = CODED if name in schema.coded else CATEGORY if name in schema.categorical else NUMBER
            if not set(map(type, values)) <= allowed:
                for i, v in enumerate(values):
                    if ok[i] is not None and type(v) not in allowed:
                        reasons[i], ok[i] = f"feature {name!r}: {_value_problem(schema, name, v)}", None
            columns[name] = values
        predicted = [e.prediction if e is not None else None for e in ok]
        for i in _bad_targets(schema, predicted, ok):
            reasons[i], ok[i] = _target_problem(schema, found[i][1].prediction, PREDICTION), None
        stamps = pd.to_datetime(pd.Series([e.timestamp if e is not None else None for e in ok], dtype=object),
                                utc=True, errors="coerce", format="ISO8601")
        for i in np.flatnonzero(stamps.isna().to_numpy()):
            if ok[i] is not None:
                reasons[int(i)], ok[i] = "timestamp is not an ISO 8601 time", None
        keep = np.array([e is not None for e in ok], dtype=bool)
        frame = pd.DataFrame({"timestamp": stamps[keep].reset_index(drop=True),
                              "prediction_id": [e.prediction_id for e in ok if e is not None]})
        for name in schema.features:
            kept = [v for v, k in zip(columns[name], keep) if k]
            frame[name] = (pd.array(kept, dtype="Int64") if name in schema.coded
                           else np.array(kept, dtype=object) if name in schema.categorical
                           else np.array(kept, dtype="float64"))   # None -> NaN: a missing value, kept
        frame["prediction"] = _target_column(schema, [v for v, k in zip(predicted, keep) if k])
        for c in schema.classes or ():
            frame[f"proba_{c}"] = np.array([e.proba[str(c)] for e in ok if e is not None],
                                           dtype="float64")
        frame[POSITION] = places[keep]
        return frame, [(found[i][0].id, r, _text(found[i][0].data)) for i, r in sorted(reasons.items())]

    def _labels(self, schema: ModelSchema, found: list[tuple[Message, Event]], places: np.ndarray
                ) -> tuple[pd.DataFrame, list]:
        dead, kept, at = [], [], []
        for (message, event), place in zip(found, places):
            reason = _target_problem(schema, event.label, LABEL)
            if reason:
                dead.append((message.id, reason, _text(message.data)))
            else:
                kept.append(event)
                at.append(place)
        frame = pd.DataFrame({"prediction_id": [e.prediction_id for e in kept],
                              "label": _target_column(schema, [e.label for e in kept]), POSITION: at})
        return frame, dead


def _features_problem(schema: ModelSchema, features: object) -> str:
    """Why an event's features are not the model's (they are known not to be)."""
    if not isinstance(features, dict):
        return "features must be a JSON object"
    missing = [f for f in schema.features if f not in features]
    if missing:
        return f"missing features: {', '.join(missing[:10])}"
    extra = [str(f)[:60] for f in features if f not in schema.features]
    return f"features the model does not read: {', '.join(extra[:10])}"


def _proba_problem(schema: ModelSchema, proba: object) -> str | None:
    """A classifier's events carry `proba` (its windows keep proba_<class> columns, which
    performance estimates read); a regressor's carry none."""
    if proba is None:
        return None if schema.classes is None else "proba is required for a classifier (a number per class)"
    if schema.classes is None:
        return "proba is for classifiers; this model is a regressor"
    if not isinstance(proba, dict) or set(proba) != {str(c) for c in schema.classes} \
            or not all(_is_number(p) and 0 <= p <= 1 for p in proba.values()):
        return f"proba must map each class ({', '.join(map(str, schema.classes))}) to a number in [0, 1]"
    return None


def _bad_targets(schema: ModelSchema, values: list, ok: list) -> list[int]:
    """Indices of the events (still ok) whose prediction or label is not a class / finite number."""
    if schema.classes is None:
        if set(map(type, values)) <= NUMBER - {type(None)} and np.isfinite(np.array(values, dtype="float64")).all():
            return []
    elif set(map(type, values)) <= CLASS_TYPES and {v for v in values if v is not None} <= set(schema.classes):
        return []
    return [i for i, v in enumerate(values) if ok[i] is not None and _target_problem_of(schema, v, "")]


def _value_problem(schema: ModelSchema, name: str, value: object) -> str | None:
    if name in schema.coded:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer code"
    if name in schema.categorical:
        return None if isinstance(value, str) else "must be a string category"
    return None if _is_number(value) else "must be a number"


def _target_problem(schema: ModelSchema, value: object, key: str) -> str | None:
    return f"no {key}" if value is msgspec.UNSET else _target_problem_of(schema, value, key)


def _target_problem_of(schema: ModelSchema, value: object, key: str) -> str | None:
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


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:160]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
