"""The inference log and its late labels, as Parquet files in a drop folder.

Layout (the contract with whatever writes predictions):
  <root>/inference/<model>/<YYYY-MM-DD>.parquet   predictions made that day
  <root>/labels/<model>/<YYYY-MM-DD>.parquet      labels that *arrived* that day
  <root>/windows/<model>/<YYYY-MM-DD>.parquet     validated production windows (written here)
Labels join predictions by `prediction_id` whenever they arrive, so a window's labels
are the union of every arrival file, not one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

INFERENCE, LABELS, WINDOWS = "inference", "labels", "windows"
MAX_LABEL_DELAY_DAYS = 7   # labels arriving on day d belong to predictions of days d - 7 .. d
REQUIRED_COLUMNS = ("timestamp", "prediction_id", "prediction")


@dataclass(frozen=True)
class DropFile:
    """One file in the drop folder: which stream, model and day it belongs to."""

    stream: str
    model: str
    day: str
    path: Path
    mtime_ns: int


class InferenceLog:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def files(self, stream: str) -> list[DropFile]:
        """Every file of a stream, oldest day first."""
        found = []
        for path in sorted((self.root / stream).glob("*/*.parquet")):
            found.append(DropFile(stream, path.parent.name, path.stem, path, path.stat().st_mtime_ns))
        return sorted(found, key=lambda f: (f.day, f.model))

    def read_predictions(self, model: str, day: str) -> pd.DataFrame | None:
        path = self.root / INFERENCE / model / f"{day}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def read_labels(self, model: str) -> pd.DataFrame:
        """All labels of a model that have arrived so far (one row per prediction id)."""
        paths = sorted((self.root / LABELS / model).glob("*.parquet"))
        if not paths:
            return pd.DataFrame({"prediction_id": pd.Series(dtype=str), "label": pd.Series(dtype=float)})
        labels = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        return labels.drop_duplicates("prediction_id", keep="last")

    def read_labels_for(self, model: str, window: str, max_delay_days: int = MAX_LABEL_DELAY_DAYS) -> pd.DataFrame:
        """The labels that can belong to one window's predictions: those that arrived on the
        window's day or up to `max_delay_days` later (one row per prediction id, newest wins).
        Reading only those files keeps a window's cost flat as the model's history grows."""
        days = pd.date_range(window, periods=max_delay_days + 1, freq="D").strftime("%Y-%m-%d")
        frames = [f for day in days if (f := self.read_arrivals(model, day)) is not None]
        if not frames:
            return pd.DataFrame({"prediction_id": pd.Series(dtype=str), "label": pd.Series(dtype=float)})
        return pd.concat(frames, ignore_index=True).drop_duplicates("prediction_id", keep="last")

    def read_arrivals(self, model: str, arrival_day: str) -> pd.DataFrame | None:
        """The labels that arrived on one day (the next elements of the model's error stream)."""
        path = self.root / LABELS / model / f"{arrival_day}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def label_days(self, model: str, arrival_day: str, max_delay_days: int) -> list[str]:
        """The prediction days whose labels arrived in one arrival file: the windows to refresh.

        Only the windows a label could belong to (at most `max_delay_days` before its
        arrival) are read, so the cost does not grow with the model's history.
        """
        path = self.root / LABELS / model / f"{arrival_day}.parquet"
        ids = set(pq.read_table(path, columns=["prediction_id"]).column(0).to_pylist())
        earliest = (pd.Timestamp(arrival_day) - pd.Timedelta(days=max_delay_days)).strftime("%Y-%m-%d")
        days = set()
        for window in [d for d in self.window_days(model) if earliest <= d <= arrival_day]:
            predictions = pq.read_table(self.root / INFERENCE / model / f"{window}.parquet", columns=["prediction_id"])
            if ids.intersection(predictions.column(0).to_pylist()):
                days.add(window)
        return sorted(days)

    def window_days(self, model: str) -> list[str]:
        return sorted(p.stem for p in (self.root / INFERENCE / model).glob("*.parquet"))

    def write_window(self, model: str, day: str, frame: pd.DataFrame) -> Path:
        path = self.root / WINDOWS / model / f"{day}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        return path

    def read_window(self, model: str, day: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        path = self.root / WINDOWS / model / f"{day}.parquet"
        return pd.read_parquet(path, columns=columns) if path.exists() else None


def window_problems(frame: pd.DataFrame, features: list[str], day: str) -> list[str]:
    """What is wrong with a window, in words; the rows are kept whatever is found."""
    problems = []
    missing = [c for c in (*REQUIRED_COLUMNS, *features) if c not in frame.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if "prediction_id" in frame.columns and frame["prediction_id"].duplicated().any():
        problems.append(f"{int(frame['prediction_id'].duplicated().sum())} duplicate prediction ids")
    if "timestamp" in frame.columns:
        days = pd.to_datetime(frame["timestamp"], utc=True).dt.strftime("%Y-%m-%d")
        outside = int((days != day).sum())
        if outside:
            problems.append(f"{outside} rows with a timestamp outside {day}")
    return problems
