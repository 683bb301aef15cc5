"""The store's newest results per model (watchkeeper.store.newest), as a scrape uses them:
drift reports decoded only as far as the exported fields."""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec
import sqlalchemy as sa

from watchkeeper.store.newest import read_newest


class FeatureDrift(msgspec.Struct, frozen=True):
    """The part of a drift report's feature entry that is exported (the rest is skipped unread)."""

    name: str
    effect_size: float | None
    drifted: bool


class _Report(msgspec.Struct):
    features: list[FeatureDrift]


# A 50-feature report is about 50 KB, mostly histograms; decoding only these fields is
# about eight times cheaper than json.loads, which is most of a 1,000-model scrape.
_DECODER = msgspec.json.Decoder(_Report)


@dataclass(frozen=True)
class DriftRow:
    model: str
    window: str
    version: str
    dataset_drift: bool
    features: list[FeatureDrift]


@dataclass(frozen=True)
class StoreSnapshot:
    """Newest window of every model in each result table, plus alert counts."""

    health: list[dict]                     # model, window, version, status
    metrics: list[dict]                    # model, window, version, metric, value, lower, upper, n_labelled,
                                           # n_predictions
    drift: list[DriftRow]
    alerts: list[tuple[str, str, int]]     # (model, kind, alerts raised)
    alert_states: dict[str, int]           # outbox notifications by delivery status


def read_snapshot(engine: sa.Engine) -> StoreSnapshot:
    """Read everything a scrape needs in one connection, a handful of queries in total."""
    newest = read_newest(engine)
    return StoreSnapshot(newest.health, newest.metrics, [_drift_row(r) for r in newest.drift], newest.alerts,
                         newest.alert_states)


def _drift_row(row: dict) -> DriftRow:
    text = row["report_json"]
    try:
        try:
            report = _DECODER.decode(text)
        except msgspec.DecodeError:   # NaN or Infinity: json.dumps writes them, strict JSON does not have them
            report = msgspec.convert(json.loads(text), _Report)
    except (msgspec.ValidationError, ValueError) as error:
        raise ValueError(f"drift report of {row['model']} {row['window']}: {error}") from None
    return DriftRow(row["model"], row["window"], row["version"], bool(row["dataset_drift"]), report.features)
