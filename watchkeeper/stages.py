"""The stages of a window's evaluation for one model, run by watchkeeper.monitor.

Each stage reads what it needs through the model's `StageContext` (the window is read once
and shared), writes its results to the store, and records what it found on the `ModelWindow`
outcome for the caller to show. A stage raises on what it cannot handle; the monitor turns
that into the model's failure. `judge` makes the verdict from what the stages found this run,
or from the store for stages that ran before (a label refresh recomputes only performance).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from watchkeeper.concept import AUTO, ERRORS, LIVE, PREDICTIONS, StreamState, label_alarms, resume, with_error_rates
from watchkeeper.config import ModelConfig
from watchkeeper.drift import evaluate_drift
from watchkeeper.estimation import CBPE
from watchkeeper.feature_store import FeastFeatures, FeatureStoreError, needs_features
from watchkeeper.health import FAILED, Verdict, WindowEvidence, assess
from watchkeeper.history import stored_history
from watchkeeper.inference_log import MAX_LABEL_DELAY_DAYS, InferenceLog, window_problems
from watchkeeper.multivariate import load_detector
from watchkeeper.performance import MetricValue, compute_metrics, segment_metrics
from watchkeeper.privacy.sensitive import SensitiveColumns
from watchkeeper.quality import FAILED as QUALITY_FAILED
from watchkeeper.precheck import validate_window
from watchkeeper.quality import QualityResult
from watchkeeper.reference import ModelReference
from watchkeeper.store import MonitoringStore, StoredMetric
from watchkeeper.telemetry import EvaluationStep

if TYPE_CHECKING:
    from watchkeeper.monitor import ModelWindow

ESTIMATED = "estimated_"   # prefix of CBPE estimates among a window's stored metrics


@dataclass
class StageContext:
    """One model's window as the stages share it: its reference, config, and the rows read once."""

    day: str
    reference: ModelReference
    store: MonitoringStore
    log: InferenceLog
    config: ModelConfig
    features: FeastFeatures | None = None      # the Feast repository windows of entity rows are joined from
    _frame: pd.DataFrame | None = None
    _frame_known: bool = False
    _arrivals: dict[str, pd.DataFrame | None] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame | None:
        """The window's rows: as the window stage kept them this run, else as kept on disk before."""
        if not self._frame_known:
            self.keep_frame(self.log.read_window(self.reference.model, self.day))
        return self._frame

    def sensitive(self) -> SensitiveColumns:
        """The columns masked in this window: those of the reference and those the config names now."""
        stored, configured = self.reference.sensitive, self.config.privacy.sensitive
        return SensitiveColumns(stored.columns | configured.columns, max(stored.min_count, configured.min_count))

    def keep_frame(self, frame: pd.DataFrame | None) -> None:
        self._frame, self._frame_known = frame, True

    def arrivals(self, day: str) -> pd.DataFrame | None:
        """The labels that arrived on `day`, read once: performance joins them to the window,
        concept drift feeds their errors to its detector."""
        if day not in self._arrivals:
            self._arrivals[day] = self.log.read_arrivals(self.reference.model, day)
        return self._arrivals[day]


@dataclass(frozen=True)
class WindowMetrics:
    """Realised and estimated performance of one window, with how much of it is labelled."""

    realised: list[MetricValue]
    estimated: list[MetricValue]
    n_labelled: int
    n_rows: int
    segments: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    span: str                 # its name in traces and logs (the asset it feeds)
    needs_window: bool        # skipped when the window has no rows
    run: Callable[[StageContext, ModelWindow, EvaluationStep], None]


# ---------------------------------------------------------------- window


def window_stage(context: StageContext, outcome: ModelWindow, step: EvaluationStep) -> None:
    """Read the logged predictions, note what is wrong with them, keep them, and check their quality
    (the vectorised pre-check, and Great Expectations on what it cannot clear: watchkeeper.precheck).

    The rows are kept whatever is found (nothing is dropped); a window that fails data quality
    severely is kept out of drift (the `drift` stage reads the verdict).
    """
    reference, store = context.reference, context.store
    model, version, day = reference.model, reference.version, context.day
    context.keep_frame(None)   # until read: a failed read must not fall back to an older kept window
    frame = context.log.read_predictions(model, day)
    sensitive = context.sensitive()
    if frame is not None:
        frame = sensitive.mask(frame)          # nothing below, the kept window included, sees a raw value
    if frame is None:
        step.set(rows=0)
        outcome.rows, outcome.problems = 0, ["no predictions logged"]
        store.put_window(model, day, version, 0, outcome.problems, None)
        return
    frame, unmatched = _with_features(context, frame)
    outcome.rows, outcome.problems = len(frame), window_problems(frame, reference.features, day) + unmatched
    step.set(rows=len(frame), problems=len(outcome.problems))
    path = context.log.write_window(model, day, frame)
    store.put_window(model, day, version, len(frame), outcome.problems, str(path))
    context.keep_frame(frame)
    outcome.quality = validate_window(reference.profile, frame, f"{model}@{day}", hidden=sensitive.columns)
    store.put_quality(model, day, version, outcome.quality.status, outcome.quality.to_dict())


def _with_features(context: StageContext, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A window that logged only entity keys gets its features from Feast, as of each row's timestamp
    (what serving saw); rows Feast has no values for are kept, their features missing, and counted."""
    reference = context.reference
    if not reference.feature_service or not needs_features(frame, reference.features):
        return frame, []
    if context.features is None:
        raise FeatureStoreError(f"{reference.model} takes its features from Feast feature service "
                                f"{reference.feature_service!r}, but no Feast repository is configured")
    joined = context.features.join(reference.feature_service, frame, timestamp="timestamp")
    unmatched = int(joined[reference.features].isna().all(axis=1).sum())
    return joined, [f"{unmatched} rows found no feature values in Feast (no feature row within the views' TTL)"
                    ] if unmatched else []


# ---------------------------------------------------------------- drift


def drift_stage(context: StageContext, outcome: ModelWindow, step: EvaluationStep) -> None:
    """Univariate tests and the joint detector; withdrawn when the window failed data quality."""
    reference, store, frame = context.reference, context.store, context.frame()
    model, day = reference.model, context.day
    step.set(rows=len(frame))
    blocked = _quality(context, outcome)
    if blocked is not None and blocked.status == QUALITY_FAILED:
        outcome.drift_blocked = blocked.describe()
        store.delete_drift(model, day)
        return
    report = evaluate_drift(reference.profile, frame, context.config.drift).to_dict()
    if reference.joint_detector:
        report["multivariate"] = [load_detector(reference.joint_detector).score(frame[reference.features]).to_dict()]
    store.put_drift(model, day, reference.version, report)
    step.set(dataset_drift=report["dataset_drift"], drifted_features=len(report["drifted_features"]))
    outcome.drift = report


def _quality(context: StageContext, outcome: ModelWindow) -> QualityResult | None:
    if outcome.quality is not None:
        return outcome.quality
    stored = context.store.quality(context.reference.model, context.day)
    return QualityResult.from_dict(stored[0].result) if stored else None


# ---------------------------------------------------------------- performance


def performance_stage(context: StageContext, outcome: ModelWindow, step: EvaluationStep) -> None:
    """Realised metrics over the labels that have arrived, CBPE estimates over every prediction."""
    reference, store, window = context.reference, context.store, context.frame()
    model, day = reference.model, context.day
    labels = context.log.read_labels_for(model, day, MAX_LABEL_DELAY_DAYS, arrivals=context.arrivals)
    joined = window.merge(labels, on="prediction_id", how="inner")
    step.set(rows=len(window), labelled=len(joined))
    realised = compute_metrics(reference.task, joined["label"], joined["prediction"], _proba(reference, joined),
                               reference.classes)
    estimated = (CBPE.from_dict(reference.cbpe).estimate(_proba(reference, window), window["prediction"].to_numpy())
                 if reference.cbpe else [])
    store.put_metrics(model, day, reference.version,
                      [v.to_dict() for v in realised] + [{**e.to_dict(), "name": ESTIMATED + e.name} for e in estimated],
                      len(joined), len(window))
    segments = [row for column in context.config.segments for row in _segment_rows(reference, column, joined)]
    store.put_segments(model, day, reference.version, segments)
    outcome.metrics = WindowMetrics(realised, estimated, len(joined), len(window), segments)


def _proba(reference: ModelReference, frame: pd.DataFrame) -> np.ndarray | None:
    columns = reference.proba_columns()
    return frame[columns].to_numpy(dtype=np.float64) if columns else None


def _segment_rows(reference: ModelReference, column: str, joined: pd.DataFrame) -> list[dict]:
    if column not in joined.columns or joined.empty:
        return []
    by_segment = segment_metrics(reference.task, joined, column, classes=reference.classes,
                                 proba_columns=reference.proba_columns() or None)
    return [{"segment": f"{column}={segment_value(value)}", **m.to_dict(), "metric": m.name}
            for value, values in by_segment.items() for m in values if m.name == reference.primary_metric]


DECIMAL_TEXT = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def segment_value(value: object) -> str:
    """A segment's value as a person reads it in the data: a float's binary noise dropped
    (`-0.044641636506989144` -> `-0.04464`, `2.0` -> `2`), also when the grouping made it text;
    anything else (a code such as `007`) as it is."""
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value):
        value = float(value)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


# ---------------------------------------------------------------- concept drift


def concept_stage(context: StageContext, outcome: ModelWindow, step: EvaluationStep) -> None:
    """Feed the errors of the predictions whose labels arrived today, and today's predicted
    class, to the model's persisted detectors (resumed from yesterday's state)."""
    reference = context.reference
    arrived = context.arrivals(context.day)
    errors = _errors(context, arrived) if arrived is not None else None
    predictions = _predicted_class(reference, context.frame())
    step.set(errors=0 if errors is None else len(errors))
    outcome.alarms = {ERRORS: _advance(context, ERRORS, errors), PREDICTIONS: _advance(context, PREDICTIONS, predictions)}


def _errors(context: StageContext, arrived: pd.DataFrame) -> pd.DataFrame | None:
    """Errors of the predictions whose labels arrived today, in prediction order."""
    model, day = context.reference.model, context.day
    first = (pd.Timestamp(day) - pd.Timedelta(days=MAX_LABEL_DELAY_DAYS)).strftime("%Y-%m-%d")
    columns = ["prediction_id", "timestamp", "prediction"]
    windows = [w for d in context.log.window_days(model) if first <= d <= day
               and (w := _kept_window(context, d, columns)) is not None]
    if not windows:
        return None
    joined = pd.concat(windows).merge(arrived[["prediction_id", "label"]], on="prediction_id").sort_values("timestamp")
    values = ((joined["prediction"] - joined["label"]).abs() if not context.reference.is_classifier
              else (joined["prediction"] != joined["label"]).astype(np.int8))
    return pd.DataFrame({"prediction_id": joined["prediction_id"], "timestamp": joined["timestamp"], "value": values})


def _kept_window(context: StageContext, day: str, columns: list[str]) -> pd.DataFrame | None:
    """A kept window's columns; the context's own day from the rows this run already holds (not re-read)."""
    if day != context.day:
        return context.log.read_window(context.reference.model, day, columns)
    frame = context.frame()
    return None if frame is None else frame[columns]


def _predicted_class(reference: ModelReference, window: pd.DataFrame | None) -> pd.DataFrame | None:
    """1 when a classifier predicts its last class (the positive one for binary models)."""
    if window is None or not reference.is_classifier:
        return None
    window = window.sort_values("timestamp")
    return pd.DataFrame({"prediction_id": window["prediction_id"], "timestamp": window["timestamp"],
                         "value": (window["prediction"] == reference.classes[-1]).astype(np.int8)})


def _advance(context: StageContext, stream: str, values: pd.DataFrame | None) -> int:
    """Resume the stream's detector from yesterday's state over today's values; store state and alarms.
    A day that `watchkeeper ingest` fed live, label by label, is that same detector: it is kept as it is."""
    reference, store, day = context.reference, context.store, context.day
    stored = store.stream_day(reference.model, stream, day)
    if stored is not None and stored.source == LIVE and stored.version == reference.version:
        return len(stored.alarms)
    if values is None or values.empty:
        return 0
    saved = store.stream_state(reference.model, stream, reference.version, before=day)
    state = StreamState.from_dict(saved) if saved else None
    new_state, alarms = resume(state, values["value"].to_numpy(), AUTO)
    first = state.n_seen if state else 0
    mapped = label_alarms(alarms, first, values["prediction_id"].tolist(), _alarm_times(values["timestamp"], alarms, first))
    mapped = with_error_rates(mapped, values["value"].to_numpy(), first, new_state.detector)
    store.put_stream(reference.model, day, stream, reference.version, len(values), new_state.to_dict(), mapped)
    return len(mapped)


def _alarm_times(timestamps: pd.Series, alarms: list[int], first: int) -> list[str | None]:
    """The window's timestamps as text where an alarm needs one (formatting every row's date
    was a tenth of a window's evaluation), None elsewhere."""
    rows = [a - first for a in alarms if 0 <= a - first < len(timestamps)]
    times: list[str | None] = [None] * len(timestamps)
    for row, text in zip(rows, timestamps.iloc[rows].astype(str)):
        times[row] = text
    return times


# ---------------------------------------------------------------- the verdict


def judge(context: StageContext, outcome: ModelWindow) -> Verdict:
    """The model's verdict for the window, from this run's results or, for stages that did not
    run, the stored ones. A window kept out of drift by data quality fails, saying why (a drift
    report made this run says it was not)."""
    blocked = outcome.drift_blocked or (None if outcome.drift is not None else _stored_block(context))
    if blocked:
        return Verdict(FAILED, [{"signal": "data_quality", "detail": f"The window failed data quality ({blocked})."}])
    reference, store, model, day = context.reference, context.store, context.reference.model, context.day
    config = context.config
    evidence = WindowEvidence(
        task=reference.task, drift=outcome.drift if outcome.drift is not None else _stored_drift(context),
        metrics=_realised(context, outcome), reference={"metrics": {n: m.to_dict() for n, m in reference.metrics.items()},
                                                        "importance": reference.importance},
        n_labelled=outcome.metrics.n_labelled if outcome.metrics else _stored_labelled(context),
        concept_alarms=store.stream_alarms(model, ERRORS, day), segment_deltas=_segment_deltas(context, outcome))
    history = stored_history(store, model, reference.version, day)
    return assess(evidence, day, history, config.health, config.drift)


def _stored_block(context: StageContext) -> str | None:
    model, day = context.reference.model, context.day
    stored = context.store.quality(model, day)
    if stored and stored[0].status == QUALITY_FAILED and not context.store.drift(model, day):
        return QualityResult.from_dict(stored[0].result).describe()
    return None


def _stored_drift(context: StageContext) -> dict | None:
    found = context.store.drift(context.reference.model, context.day)
    return found[0].report if found else None


def _stored_metrics(context: StageContext) -> list[StoredMetric]:
    return [m for m in context.store.metrics(context.reference.model, context.day)
            if not m.metric.startswith(ESTIMATED)]


def _realised(context: StageContext, outcome: ModelWindow) -> list[dict]:
    if outcome.metrics is not None:
        return [m.to_dict() for m in outcome.metrics.realised]
    return [{"name": m.metric, "value": m.value, "lower": m.lower, "upper": m.upper} for m in _stored_metrics(context)]


def _stored_labelled(context: StageContext) -> int:
    stored = _stored_metrics(context)
    return stored[0].n_labelled if stored else 0


def _segment_deltas(context: StageContext, outcome: ModelWindow) -> dict[str, float]:
    """Each configured segment's primary metric minus the reference: the root cause ranks them."""
    reference = context.reference
    primary = reference.primary_metric
    if outcome.metrics is not None:
        rows = outcome.metrics.segments
    else:
        rows = [r for s in context.store.segments(reference.model, context.day) for r in s.segments]
    if primary not in reference.metrics:
        return {}
    base = reference.metrics[primary].value
    return {r["segment"]: r["value"] - base for r in rows if r["metric"] == primary and r["value"] is not None}


STAGES = {
    "window": Stage("production_window", False, window_stage),
    "drift": Stage("drift_report", True, drift_stage),
    "performance": Stage("performance_metrics", True, performance_stage),
    "concept": Stage("concept_drift", False, concept_stage),
}
