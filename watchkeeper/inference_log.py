"""The inference log and its late labels, as Parquet files in a drop folder.

Layout (the contract with whatever writes predictions):
  <root>/inference/<model>/<YYYY-MM-DD>.parquet   predictions made that day
  <root>/labels/<model>/<YYYY-MM-DD>.parquet      labels that *arrived* that day
  <root>/windows/<model>/<YYYY-MM-DD>.parquet     validated production windows (written here)
Labels join predictions by `prediction_id` whenever they arrive, so a window's labels
are the union of every arrival file, not one file.

Every reader raises InferenceInputError (one line, naming the file) on a file it cannot
read, such as a truncated Parquet file or a label file without its columns, so the
evaluation loop can fail that one model's window and carry on with the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from watchkeeper.frames import DataFileError, column_name_problem, read_parquet

INFERENCE, LABELS, WINDOWS = "inference", "labels", "windows"
MAX_LABEL_DELAY_DAYS = 7   # labels arriving on day d belong to predictions of days d - 7 .. d
REQUIRED_COLUMNS = ("timestamp", "prediction_id", "prediction")
LABEL_COLUMNS = ("prediction_id", "label")


class InferenceInputError(DataFileError):
    """An inference, label or window file that cannot be read; one line, naming the file."""


def read_file(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A drop-folder Parquet file (only `columns` when given), or an InferenceInputError."""
    try:
        return read_parquet(path, columns)
    except DataFileError as error:
        raise InferenceInputError(str(error)) from None


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
        return read_file(path) if path.exists() else None

    def read_labels(self, model: str) -> pd.DataFrame:
        """All labels of a model that have arrived so far (one row per prediction id)."""
        paths = sorted((self.root / LABELS / model).glob("*.parquet"))
        if not paths:
            return pd.DataFrame({"prediction_id": pd.Series(dtype=str), "label": pd.Series(dtype=float)})
        labels = pd.concat([read_file(p, LABEL_COLUMNS) for p in paths], ignore_index=True)
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
        return read_file(path, LABEL_COLUMNS) if path.exists() else None

    def label_days(self, model: str, arrival_day: str, max_delay_days: int) -> list[str]:
        """The prediction days whose labels arrived in one arrival file: the windows to refresh.

        Only the windows a label could belong to (at most `max_delay_days` before its
        arrival) are read, so the cost does not grow with the model's history.
        """
        path = self.root / LABELS / model / f"{arrival_day}.parquet"
        ids = set(read_file(path, ("prediction_id",))["prediction_id"])
        earliest = (pd.Timestamp(arrival_day) - pd.Timedelta(days=max_delay_days)).strftime("%Y-%m-%d")
        days = set()
        for window in [d for d in self.window_days(model) if earliest <= d <= arrival_day]:
            predictions = read_file(self.root / INFERENCE / model / f"{window}.parquet", ("prediction_id",))
            if ids.intersection(predictions["prediction_id"]):
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
        return read_file(path, columns) if path.exists() else None


def window_problems(frame: pd.DataFrame, features: list[str], day: str) -> list[str]:
    """What is wrong with a window, in words; the rows are kept whatever is found."""
    problems = []
    naming = column_name_problem(frame.columns)
    if naming:
        problems.append(naming)
    missing = [c for c in (*REQUIRED_COLUMNS, *features) if c not in frame.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if "prediction_id" in frame.columns and not naming:
        ids = frame["prediction_id"]
        if ids.isna().any():
            problems.append(f"{int(ids.isna().sum())} rows without a prediction id")
        if ids.dropna().duplicated().any():
            problems.append(f"{int(ids.dropna().duplicated().sum())} duplicate prediction ids")
    if "timestamp" in frame.columns and not naming:
        problems += _timestamp_problems(frame["timestamp"], day)
    return problems


def _timestamp_problems(timestamps: pd.Series, day: str) -> list[str]:
    """Missing, unreadable and out-of-day timestamps, each counted (never a parse exception)."""
    problems = []
    absent = timestamps.isna()
    if absent.any():
        problems.append(f"{int(absent.sum())} rows without a timestamp")
    parsed = pd.to_datetime(timestamps, utc=True, errors="coerce", format="mixed")   # not a time: NaT
    unreadable = int((parsed.isna() & ~absent).sum())
    if unreadable:
        problems.append(f"{unreadable} rows with a timestamp that is not a time")
    outside = int((parsed.notna() & (parsed.dt.strftime("%Y-%m-%d") != day)).sum())
    if outside:
        problems.append(f"{outside} rows with a timestamp outside {day}")
    return problems
