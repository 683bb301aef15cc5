"""Replays 14 days of production traffic for the demo models, with delayed labels and planted drift.

File layout (a contract the monitoring code reads):
  <home>/inference/<model>/<YYYY-MM-DD>.parquet  one file per prediction day
  <home>/labels/<model>/<YYYY-MM-DD>.parquet     one file per label ARRIVAL day
Files are encrypted when a KMS is configured (the demo's is) and appear whole (temp file, rename).
Every prediction day is generated from its own seed, so any release order gives the same files.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd

from watchkeeper.demo.models import CHAMPION, DEMO_MODELS, TARGET, DemoModel, load_dataset, quiet_mlflow
from watchkeeper.security.sealed_files import write_parquet

DEMO_START = date(2026, 11, 1)
DEMO_DAYS = 14
DRIFT_START_DAY = 8  # 1-based: drift from DEMO_START + 7 days inclusive
ROWS_PER_DAY = (300, 500)
JITTER = 0.03  # gaussian noise, as a fraction of each continuous feature's std
MAX_TIE_SHARE = 0.1  # a feature whose most common value covers this share of rows is not continuous
SHIFT_STRENGTH = 1.5  # covariate shift: resampling weights ∝ exp(SHIFT_STRENGTH · z)
CONCEPT_FEATURE = "worst_radius"  # concept drift: labels flip above this feature's median...
CONCEPT_FLIP = 0.7  # ...with this probability
LABEL_DELAY_P = (0.20, 0.40, 0.25, 0.10, 0.05)  # P(label arrives 0, 1, ... days after prediction)
MAX_DELAY = len(LABEL_DELAY_P) - 1
DAY_MS = 86_400_000


def demo_days(start: date = DEMO_START, days: int = DEMO_DAYS) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]


def _midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def _utc(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ms, unit="ms", utc=True).astype("datetime64[ns, UTC]"))


@dataclass(frozen=True)
class DayTraffic:
    """One model's predictions for one day, and when each of their labels arrives."""

    inference: pd.DataFrame
    labels: pd.DataFrame  # prediction_id, label, arrived_at, arrival_day


class _ModelStream:
    """Traffic generator for one model: resampling the full dataset the way its scenario dictates."""

    def __init__(self, model: DemoModel, start: date, seed: int):
        self.model, self.start, self.seed = model, start, seed
        self.estimator = mlflow.sklearn.load_model(f"models:/{model.name}@{CHAMPION}")
        data = load_dataset(model.dataset)
        self.X, self.y = data.drop(columns=TARGET).astype("float64"), data[TARGET].to_numpy()
        # Jittering a lumpy feature (a code like "sex", a rounded ratio like "s4") would itself look like
        # drift against the unjittered reference, so only features without a dominant value get noise.
        continuous = self.X.apply(lambda col: col.value_counts(normalize=True).iloc[0]) < MAX_TIE_SHARE
        self.noise = (JITTER * self.X.std() * continuous).to_numpy()
        self.shift_weights = self._shift_weights()

    def _shift_weights(self) -> np.ndarray | None:
        """Tilted resampling: moves the shifted marginals while keeping P(y|x) (labels stay real)."""
        if not self.model.shifted_features:
            return None
        cols = self.X[list(self.model.shifted_features)]
        total = ((cols - cols.mean()) / cols.std()).sum(axis=1)
        weights = np.exp(SHIFT_STRENGTH * (total - total.mean()) / total.std()).to_numpy()
        return weights / weights.sum()

    def _labels(self, rows: np.ndarray, drifting: bool, rng: np.random.Generator) -> np.ndarray:
        """True targets; under concept drift, one region's labels move to another class."""
        labels = self.y[rows]
        if drifting and self.model.scenario == "concept_drift":
            region = self.X[CONCEPT_FEATURE].to_numpy()[rows] > self.X[CONCEPT_FEATURE].median()
            flip = region & (rng.random(len(rows)) < CONCEPT_FLIP)
            labels = np.where(flip, (labels + 1) % len(self.estimator.classes_), labels)
        return labels

    def traffic(self, day: date) -> DayTraffic:
        """Deterministic per (seed, model, day): the same draws whatever order days are asked in."""
        rng = np.random.default_rng([self.seed, zlib.crc32(self.model.name.encode()), day.toordinal()])
        drifting = (day - self.start).days + 1 >= DRIFT_START_DAY
        n = int(rng.integers(ROWS_PER_DAY[0], ROWS_PER_DAY[1] + 1))
        weights = self.shift_weights if drifting and self.model.scenario == "covariate_shift" else None
        rows = rng.choice(len(self.X), size=n, p=weights)
        features = self.X.iloc[rows].reset_index(drop=True) + rng.normal(size=(n, len(self.noise))) * self.noise
        labels = self._labels(rows, drifting, rng)
        timestamps = np.sort(rng.integers(0, DAY_MS, n)) + _midnight_ms(day)
        ids = [f"{self.model.name}-{day:%Y%m%d}-{i:05d}" for i in range(n)]
        inference = pd.concat([pd.DataFrame({"timestamp": _utc(timestamps), "prediction_id": ids}),
                               features, self._predict(features)], axis=1)
        return DayTraffic(inference, self._arrivals(ids, labels, timestamps, day, rng))

    def _predict(self, features: pd.DataFrame) -> pd.DataFrame:
        prediction = self.estimator.predict(features)
        if not self.model.is_classifier:
            return pd.DataFrame({"prediction": prediction.astype("float64")})
        probas = pd.DataFrame(self.estimator.predict_proba(features),
                              columns=[f"proba_{c}" for c in self.estimator.classes_])
        return pd.DataFrame({"prediction": prediction.astype("int64")}).join(probas)

    def _arrivals(self, ids: list[str], labels: np.ndarray, timestamps: np.ndarray, day: date,
                  rng: np.random.Generator) -> pd.DataFrame:
        """Delay 0–MAX_DELAY days; same-day labels land between the prediction and midnight."""
        delay = rng.choice(len(LABEL_DELAY_P), size=len(ids), p=LABEL_DELAY_P)
        arrival_midnight = _midnight_ms(day) + delay * DAY_MS
        earliest = np.maximum(timestamps, arrival_midnight)
        arrived = earliest + (rng.random(len(ids)) * (arrival_midnight + DAY_MS - earliest)).astype("int64")
        kind = "int64" if self.model.is_classifier else "float64"
        return pd.DataFrame({"prediction_id": ids, "label": labels.astype(kind), "arrived_at": _utc(arrived),
                             "arrival_day": [day + timedelta(days=int(d)) for d in delay]})


class Simulator:
    """Releases the demo's inference logs and label files day by day under `home`."""

    def __init__(self, home: Path, tracking_uri: str, models: tuple[DemoModel, ...] = DEMO_MODELS,
                 start: date = DEMO_START, days: int = DEMO_DAYS, seed: int = 0):
        quiet_mlflow()
        mlflow.set_tracking_uri(tracking_uri)
        self.home, self.days = Path(home), set(demo_days(start, days))
        self.streams = [_ModelStream(model, start, seed) for model in models]
        self._cache: dict[tuple[str, date], DayTraffic] = {}

    def _traffic(self, stream: _ModelStream, day: date) -> DayTraffic:
        key = (stream.model.name, day)
        if key not in self._cache:
            self._cache[key] = stream.traffic(day)
        return self._cache[key]

    def _labels_arriving(self, stream: _ModelStream, day: date) -> pd.DataFrame:
        """Labels of the last MAX_DELAY + 1 prediction days that land on `day`, in arrival order."""
        sent = [self._traffic(stream, d).labels for d in sorted(self.days) if 0 <= (day - d).days <= MAX_DELAY]
        if not sent:
            return pd.DataFrame()
        labels = pd.concat(sent, ignore_index=True)
        labels = labels[labels["arrival_day"] == day].drop(columns="arrival_day")
        return labels.sort_values("arrived_at", kind="stable").reset_index(drop=True)

    def release_day(self, day: date) -> list[Path]:
        """Write `day`'s predictions (if it is a demo day) and every label arriving on `day`."""
        written = []
        for stream in self.streams:
            if day in self.days:
                path = self.home / "inference" / stream.model.name / f"{day:%Y-%m-%d}.parquet"
                written.append(write_parquet(self._traffic(stream, day).inference, path))
            labels = self._labels_arriving(stream, day)
            if len(labels):
                written.append(write_parquet(labels, self.home / "labels" / stream.model.name / f"{day:%Y-%m-%d}.parquet"))
        return written

