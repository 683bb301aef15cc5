"""Turn a store snapshot into gauge families.

Every family is labelled by model (and version, metric, feature or state), never by
window: the newest window is what a dashboard shows now, and Prometheus itself keeps
the history. docs/observability.md lists the families and their cardinality bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from watchkeeper.health import DEGRADED, DRIFTED, NO_DATA, OK
from watchkeeper.metrics_export.exposition import Gauge
from watchkeeper.metrics_export.store_reader import DriftRow, FeatureDrift, StoreSnapshot

# Numeric health for alerting and status-history panels: higher is worse; no_data is
# below ok because it says nothing about the model, only about its traffic.
HEALTH_CODE = {NO_DATA: -1, OK: 0, DRIFTED: 1, DEGRADED: 2}
WINDOW_LENGTH = timedelta(days=1)   # windows are the daily partitions of monitoring_assets/partitions.py
MODEL_VERSION = ("model", "version")


def health_families(snapshot: StoreSnapshot) -> Iterator[Gauge]:
    code = Gauge("watchkeeper_model_health", "Newest verdict: -1 no_data, 0 ok, 1 drifted, 2 degraded.", MODEL_VERSION)
    status = Gauge("watchkeeper_model_status", "1 for the newest verdict's status, 0 for the other statuses.",
                   (*MODEL_VERSION, "status"))
    for row in snapshot.health:
        code.add(row["model"], row["version"], HEALTH_CODE.get(row["status"], math.nan))
        for name in dict.fromkeys([*HEALTH_CODE, row["status"]]):
            status.add(row["model"], row["version"], name, float(name == row["status"]))
    yield from (code, status)


def performance_families(snapshot: StoreSnapshot) -> Iterator[Gauge]:
    labels = (*MODEL_VERSION, "metric")
    value = Gauge("watchkeeper_metric_value", "Metric of the newest window with metrics.", labels)
    lower = Gauge("watchkeeper_metric_lower", "Lower bound of the metric's confidence interval.", labels)
    upper = Gauge("watchkeeper_metric_upper", "Upper bound of the metric's confidence interval.", labels)
    counts = {}
    for row in snapshot.metrics:
        key = (row["model"], row["version"], row["metric"])
        value.add(*key, _number(row["value"]))
        lower.add(*key, _number(row["lower"]))
        upper.add(*key, _number(row["upper"]))
        counts[row["model"], row["version"]] = (row["n_labelled"], row["n_predictions"])
    yield from (value, lower, upper)
    yield from _label_families(counts)


def _label_families(counts: dict[tuple[str, str], tuple[int, int]]) -> Iterator[Gauge]:
    predictions = Gauge("watchkeeper_window_predictions", "Predictions in the newest window with metrics.",
                        MODEL_VERSION)
    labelled = Gauge("watchkeeper_window_labelled", "Predictions of that window whose label has arrived.",
                     MODEL_VERSION)
    completeness = Gauge("watchkeeper_label_completeness", "Share of that window's predictions with a label.",
                         MODEL_VERSION)
    for key, (n_labelled, n_predictions) in counts.items():
        predictions.add(*key, n_predictions)
        labelled.add(*key, n_labelled)
        completeness.add(*key, n_labelled / n_predictions if n_predictions else math.nan)
    yield from (predictions, labelled, completeness)


def drift_families(snapshot: StoreSnapshot, max_features: int) -> Iterator[Gauge]:
    dataset = Gauge("watchkeeper_dataset_drift", "1 when the newest window drifted as a whole.", MODEL_VERSION)
    n_drifted = Gauge("watchkeeper_drifted_features", "Features that drifted in the newest window (never capped).",
                      MODEL_VERSION)
    n_features = Gauge("watchkeeper_monitored_features", "Features tested for drift in the newest window.",
                       MODEL_VERSION)
    effect = Gauge("watchkeeper_feature_drift_effect_size",
                   "Effect size of a feature's drift (PSI, Wasserstein in reference sds or Jensen-Shannon), "
                   "for the most drifted features of each model.", ("model", "feature"))
    drifted = Gauge("watchkeeper_feature_drifted", "1 when the feature drifted (significant and large enough).",
                    ("model", "feature"))
    for row in snapshot.drift:
        dataset.add(row.model, row.version, float(row.dataset_drift))
        n_drifted.add(row.model, row.version, sum(f.drifted for f in row.features))
        n_features.add(row.model, row.version, len(row.features))
        for feature in most_drifted(row, max_features):
            effect.add(row.model, feature.name, _number(feature.effect_size))
            drifted.add(row.model, feature.name, float(feature.drifted))
    yield from (dataset, n_drifted, n_features, effect, drifted)


def most_drifted(row: DriftRow, limit: int) -> list[FeatureDrift]:
    """The `limit` features to export: drifted ones first, then by effect size, largest first."""
    if len(row.features) <= limit:
        return row.features
    return sorted(row.features, key=lambda f: (not f.drifted, -_number(f.effect_size, -math.inf)))[:limit]


def freshness_families(snapshot: StoreSnapshot, now: datetime) -> Iterator[Gauge]:
    age = Gauge("watchkeeper_window_age_seconds",
                "Seconds since the end of the model's newest evaluated window (data freshness).", ("model",))
    ends = {row["model"]: window_end(row["window"]) for row in snapshot.health}
    for model, end in ends.items():
        age.add(model, (now - end).total_seconds())
    yield age
    if ends:
        last = Gauge("watchkeeper_last_evaluation_timestamp_seconds",
                     "Unix time of the end of the newest window evaluated for any model.")
        last.add(max(ends.values()).timestamp())
        yield last


def alert_families(snapshot: StoreSnapshot) -> Iterator[Gauge]:
    per_model = Gauge("watchkeeper_model_alerts", "Alerts raised per model and kind (one per problem).",
                      ("model", "kind"))
    for model, kind, count in snapshot.alerts:
        per_model.add(model, kind, count)
    by_state = Gauge("watchkeeper_alerts", "Alert notifications by delivery state in the outbox "
                     "(pending, delivered, dead).", ("state",))
    for state, count in snapshot.alert_states.items():
        by_state.add(state, count)
    yield from (per_model, by_state)


def window_end(window: str) -> datetime:
    """End of a daily window named by its ISO date, in UTC."""
    try:
        start = date.fromisoformat(window)
    except ValueError:
        raise ValueError(f"window {window!r} is not an ISO date (YYYY-MM-DD)") from None
    return datetime(start.year, start.month, start.day, tzinfo=timezone.utc) + WINDOW_LENGTH


def _number(value: float | None, default: float = math.nan) -> float:
    """NULL in the store (a value that could not be computed) is NaN on /metrics, not a missing series."""
    return default if value is None else float(value)
