"""Real-time concept drift: each arriving label feeds its model's error-stream detector at once.

The detector is the one the daily evaluation uses (watchkeeper.stages, stream "errors"): its
state for the arrival day is the store's `streams` row of (model, day, "errors"), resumed from
the model version's newest earlier day exactly as the daily evaluation resumes it. Each batch's
new labels are joined to their predictions, turned into errors (a classifier's 0/1 mistakes, a
regressor's absolute errors) in arrival order, and fed; the new state and the day's alarms are
written with `source="live"` in the batch's own transaction (watchkeeper.ingest.writer), so a
label stored is a label fed, once, and a crash can never leave the two apart. The daily
evaluation keeps a live day as it is and reads its alarms (one detector, one state: the two
cannot disagree).

An alarm raises a concept-drift alert in the same transaction, through the problem log and the
outbox (watchkeeper.problems, fingerprint `model:version:concept_drift`): the day's evaluation
raises that same problem for the same window, which the problem log counts once.

A label that arrives before its prediction is stored at once and fed when the prediction is
stored: the batch that stores new predictions looks up, in the dedupe index, which of them
already have a label (one indexed probe when the model has no label at all), reads those labels
back from the log's label parts and feeds them, in their arrival order, on the prediction's
arrival day and in its transaction (so, again, once).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from watchkeeper.alerting.builder import build_alerts
from watchkeeper.alerting.policy import Policy
from watchkeeper.concept import AUTO, ERRORS, LIVE, StreamState, label_alarms, resume
from watchkeeper.inference_log import INFERENCE, LABELS, MAX_LABEL_DELAY_DAYS, SUFFIX, read_file
from watchkeeper.problems import ProblemLog
from watchkeeper.reference import ModelReference
from watchkeeper.store import MonitoringStore

PREDICTION_COLUMNS = ("prediction_id", "timestamp", "prediction")
LABEL_COLUMNS = ("prediction_id", "label")


class LiveConcept:
    """Feeds labels to the models' error-stream detectors inside the ingestion's transactions."""

    def __init__(self, store: MonitoringStore, root: str | Path, references: Mapping[str, ModelReference],
                 policy: Policy | None) -> None:
        self.store, self.root, self.references, self.policy = store, Path(root), dict(references), policy
        self.problem_log = ProblemLog(store)
        self._known: dict[str, pd.DataFrame] = {}     # model -> recent predictions, indexed by prediction id
        self._pending: dict[str, list[pd.DataFrame]] = {}   # model -> predictions not yet joined into _known
        self._parts: set[Path] = set()                # parts already read into _known
        self.alarms = 0

    def remember(self, tx, model: str, predictions: pd.DataFrame, day: str) -> None:
        """Predictions this process is storing (in the batch before its labels): labels find them
        without a read. Should the commit fail, the process stops, and with it what it remembered.
        Labels that came before these predictions are fed now, in `tx`."""
        self._add(model, predictions[list(PREDICTION_COLUMNS)])
        early = self.store.ingest_rows.stored_among(tx, model, LABELS, predictions["prediction_id"].tolist())
        if early:
            self.feed(tx, model, self._stored_labels(model, early, day), day)

    def _stored_labels(self, model: str, ids: list[str], day: str) -> pd.DataFrame:
        """The stored labels of `ids`, in arrival order (parts are named by their write time)."""
        frames = [read_file(path, LABEL_COLUMNS) for path in self._day_parts(LABELS, model, day)]
        labels = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(LABEL_COLUMNS))
        return labels[labels["prediction_id"].isin(ids)].drop_duplicates("prediction_id").reset_index(drop=True)

    def feed(self, tx, model: str, labels: pd.DataFrame, day: str) -> None:
        """Feed a batch's new labels of `model` (arrived on `day`) to its detector, in `tx`."""
        reference = self.references[model]
        joined = self._join(model, labels, day)
        if joined.empty:
            return
        errors = ((joined["prediction"] != joined["label"]).astype(np.int8) if reference.is_classifier
                  else (joined["prediction"] - joined["label"]).abs()).to_numpy()
        self.store.ingest_rows.lock_model(tx, model)
        stored = self.store.stream_day(model, ERRORS, day, tx)
        if stored is not None and stored.version == reference.version:
            state, n_values, alarms = StreamState.from_dict(stored.state), stored.n_values, stored.alarms
        else:
            saved = self.store.stream_state(model, ERRORS, reference.version, before=day, tx=tx)
            state, n_values, alarms = (StreamState.from_dict(saved) if saved else None), 0, []
        new_state, found = resume(state, errors, AUTO)
        first = state.n_seen if state else 0
        stamps = joined["timestamp"].astype(str).tolist() if found else []   # formatted only when an alarm needs them
        mapped = label_alarms(found, first, joined["prediction_id"].tolist(), stamps)
        self.store.put_stream(model, day, ERRORS, reference.version, n_values + len(errors), new_state.to_dict(),
                              alarms + mapped, tx=tx, source=LIVE)
        if mapped:
            self.alarms += len(mapped)
            self._alert(tx, reference, day, alarms + mapped)

    def _alert(self, tx, reference: ModelReference, day: str, alarms: list[dict]) -> None:
        """The concept-drift alert the day's verdict raises for these alarms (health.py's reason)."""
        if self.policy is None:
            return
        reason = {"signal": "concept_drift", "alarms": alarms,
                  "detail": f"{len(alarms)} stream detector alarm(s) on the prediction errors"}
        alerts = build_alerts(reference.model, reference.version, day, reference.task, "degraded", [reason], {})
        self.problem_log.record(reference.model, reference.version, day, alerts, self.policy, latest=False, tx=tx)

    def _join(self, model: str, labels: pd.DataFrame, day: str) -> pd.DataFrame:
        """Labels with their predictions, in arrival order; reads parts it has not seen on a miss."""
        ids = labels["prediction_id"].to_numpy()
        known = self._lookup(model)
        if known is None or (known.index.get_indexer(ids) < 0).any():   # the index's hash table is built once
            self._read_new_parts(model, day)
            known = self._lookup(model)
        if known is None:
            return labels.iloc[:0].assign(prediction=[], timestamp=[])
        at = known.index.get_indexer(ids)
        found, at = at >= 0, at[at >= 0]
        return pd.DataFrame({"prediction_id": ids[found], "label": labels["label"].to_numpy()[found],
                             "prediction": known["prediction"].to_numpy()[at],
                             "timestamp": known["timestamp"].iloc[at].reset_index(drop=True)})

    def _read_new_parts(self, model: str, day: str) -> None:
        """Predictions written by other consumers (or before this one started), of the days a label
        arriving on `day` can belong to."""
        for path in self._day_parts(INFERENCE, model, day):
            if path not in self._parts:
                self._parts.add(path)
                self._add(model, read_file(path, PREDICTION_COLUMNS))

    def _day_parts(self, kind: str, model: str, day: str) -> list[Path]:
        """The log's files of `kind` for the days a label arriving on `day` can belong to, oldest first."""
        days = pd.date_range(end=day, periods=MAX_LABEL_DELAY_DAYS + 1, freq="D").strftime("%Y-%m-%d")
        paths: list[Path] = []
        for d in days:
            folder = self.root / kind / model / f"{d}{SUFFIX}"
            paths += [folder] if folder.is_file() else sorted(folder.glob(f"part-*{SUFFIX}")) if folder.is_dir() else []
        return paths

    def _add(self, model: str, predictions: pd.DataFrame) -> None:
        self._pending.setdefault(model, []).append(predictions.set_index("prediction_id"))

    def _lookup(self, model: str) -> pd.DataFrame | None:
        """The model's known predictions; batches remembered since the last lookup are joined in
        once, here, so storing predictions costs no copy of the ones before."""
        pending = self._pending.pop(model, [])
        if pending:
            known = self._known.get(model)
            joined = pd.concat(([known] if known is not None else []) + pending)
            self._known[model] = joined[~joined.index.duplicated()]   # a part read back that this process wrote
        return self._known.get(model)
