"""What the monitoring store hands back: one frozen record type per kind of stored result.

Callers read results through these, never through the tables (watchkeeper/store/schema.py is
the store's own business): a column renamed or split by a migration changes the store, not
every reader. JSON columns arrive decoded (`reasons_json` is `reasons`), times in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from watchkeeper.store.sealed import loaded_json


@dataclass(frozen=True)
class StoredProfile:
    """A model version's reference as stored; watchkeeper.reference.ModelReference is its typed form."""

    model: str
    version: str
    task: str
    profile: dict[str, Any]
    reference: dict[str, Any]   # {"metrics": {name: MetricValue dict}, "classes": [...], "features": [...]}
    error: str | None = None    # why the stored row could not be decoded (then profile and reference are empty)


@dataclass(frozen=True)
class StoredWindow:
    """A production window as kept: its size, what was wrong with it, where its rows are."""

    model: str
    window: str
    version: str | None
    n_rows: int
    problems: list[str]
    path: str | None


@dataclass(frozen=True)
class StoredQuality:
    model: str
    window: str
    version: str
    status: str                 # passed | warning | failed
    result: dict[str, Any]      # QualityResult.to_dict()


@dataclass(frozen=True)
class StoredDrift:
    model: str
    window: str
    version: str
    dataset_drift: bool
    n_current: int
    report: dict[str, Any]      # DriftReport.to_dict(), with "multivariate" when a joint detector ran


@dataclass(frozen=True)
class StoredMetric:
    """One metric of a window (CBPE estimates carry the `estimated_` prefix)."""

    model: str
    window: str
    metric: str
    version: str
    value: float | None
    lower: float | None
    upper: float | None
    n_labelled: int
    n_predictions: int


@dataclass(frozen=True)
class StoredSegments:
    model: str
    window: str
    version: str
    segments: list[dict[str, Any]]   # [{segment, metric, value, lower, upper}]


@dataclass(frozen=True)
class StoredVerdict:
    model: str
    window: str
    version: str
    status: str                 # ok | drifted | degraded | no_data | failed
    reasons: list[dict[str, Any]]


@dataclass(frozen=True)
class StoredVerdictVersion:
    """One verdict a window was given; a re-run adds the next revision, none is overwritten."""

    model: str
    window: str
    revision: int
    version: str
    status: str
    reasons: list[dict[str, Any]]
    lineage: dict[str, Any]     # watchkeeper.lineage.Lineage.to_dict(): data, profile, model, code versions
    run_id: str | None
    decided_at: datetime


@dataclass(frozen=True)
class StoredStream:
    """A concept-drift detector's day: its state after the day and the alarms it raised."""

    model: str
    day: str
    stream: str                 # "errors" | "predictions"
    version: str
    n_values: int
    state: dict[str, Any]
    alarms: list[dict[str, Any]]
    source: str = "daily"       # "live": fed by `watchkeeper ingest` as labels arrived (kept by the daily evaluation)


@dataclass(frozen=True)
class StoredFailure:
    """Why a stage could not evaluate a model's window (it stands until the stage succeeds)."""

    model: str
    window: str
    stage: str
    version: str | None
    reason: str
    failed_at: datetime


@dataclass(frozen=True)
class StoredProblem:
    """One row of the problem log; watchkeeper.problems owns what its states mean."""

    fingerprint: str
    model: str
    version: str
    kind: str
    state: str
    first_window: str
    last_window: str
    occurrence: int
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    payload: dict[str, Any]     # the newest AlertRecord of the problem, as a dict
    episode: int = 1            # the how-manieth incident of this model version and kind
    record: str = "incident"    # incident | problem | change
    healthy_windows: int = 0    # newest windows in a row without the problem


@dataclass(frozen=True)
class StoredAlert:
    """An alert a window's verdict raised (or a promotion asked for), as it was raised."""

    model: str
    window: str
    fingerprint: str
    record: str
    payload: dict[str, Any]     # the AlertRecord, as a dict


def aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the store keeps is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def decoded(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as a record's fields: JSON columns decoded (`reasons_json` becomes `reasons`),
    times in UTC."""
    fields = {}
    for name, value in row.items():
        if name.endswith("_json"):
            fields[name.removesuffix("_json")] = loaded_json(name, value)
        else:
            fields[name] = aware(value) if isinstance(value, datetime) else value
    return fields
