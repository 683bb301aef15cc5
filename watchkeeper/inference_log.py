"""The inference log and its late labels, as Parquet files in a drop folder.

Layout (the contract with whatever writes predictions):
  <root>/inference/<model>/<YYYY-MM-DD>.parquet   predictions made that day (a file, or a folder
                                                  of parts that `watchkeeper ingest` appends to)
  <root>/labels/<model>/<YYYY-MM-DD>.parquet      labels that *arrived* that day
  <root>/windows/<model>/<YYYY-MM-DD>.parquet     validated production windows (written here)
Labels join predictions by `prediction_id` whenever they arrive, so a window's labels
are the union of every arrival file, not one file. Anything else in the drop folder is
skipped with its reason by `InferenceLog.scan`, never raised on.

Files are encrypted at rest when a KMS is configured (watchkeeper.security: windows written here
are sealed; sealed or plain inference and label files are read alike).

Every reader raises InferenceInputError (one line, naming the file) on a file it cannot
read, such as a truncated Parquet file or a label file without its columns, so the
evaluation loop can fail that one model's window and carry on with the others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from watchkeeper.frames import DataFileError, column_name_problem, read_parquet

from watchkeeper.messages import one_line
from watchkeeper.names import model_name_problem
from watchkeeper.security.sealed_files import write_parquet
from watchkeeper.security import residency

INFERENCE, LABELS, WINDOWS = "inference", "labels", "windows"
MAX_LABEL_DELAY_DAYS = 7   # labels arriving on day d belong to predictions of days d - 7 .. d
REQUIRED_COLUMNS = ("timestamp", "prediction_id", "prediction")
LABEL_COLUMNS = ("prediction_id", "label")
SUFFIX = ".parquet"
LINK_OUT = "a link out of the drop folder, or to nothing"


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
    size: int

    @property
    def name(self) -> str:
        """Its path inside the drop folder, e.g. inference/churn/2026-11-05.parquet."""
        return f"{self.stream}/{self.model}/{self.day}{SUFFIX}"


@dataclass(frozen=True)
class Skipped:
    """Something in the drop folder that cannot be used as it is, and why."""

    name: str       # its path inside the drop folder
    reason: str


@dataclass
class Listing:
    """One stream of the drop folder, sorted out.

    files: well-formed files of a day between `first` and `last` (the days that are windows).
    waiting: well-formed files of a day after `last` that has begun (today): windows once it ends.
    skipped: everything else, with the reason (never raised, so one stray file stops nothing).
    """

    files: list[DropFile] = field(default_factory=list)
    waiting: list[DropFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class LabelDays:
    """The windows whose labels arrived in one label file, and the files that could not be read
    to tell (the label file itself, or a window's predictions)."""

    days: list[str] = field(default_factory=list)
    unreadable: list[Skipped] = field(default_factory=list)


def files_digest(files: Iterable[DropFile]) -> str:
    """A short digest of which files there are and of their versions (modification time and size)."""
    lines = sorted(f"{f.name}:{f.mtime_ns}:{f.size}" for f in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


class InferenceLog:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def scan(self, stream: str, first: str, last: str, today: str | None = None) -> Listing:
        """Every file of a stream, sorted into usable files (oldest day first), files of a day that
        is not a window yet, and skipped paths with their reasons.

        Only `<stream>/<model>/<YYYY-MM-DD>.parquet` is used, and only where it stays inside the
        drop folder: hidden files and folders, nested folders, other names, impossible dates, days
        before `first` or after `today` (UTC), folders that cannot name a model, and links that
        lead out of the drop folder are skipped.
        """
        listing, today = Listing(), today or datetime.now(timezone.utc).date().isoformat()
        for folder in self._entries(self.root / stream, listing):
            problem = self._folder_problem(folder)
            if problem:
                listing.skipped.append(Skipped(self._name(folder.path), problem))
                continue
            for entry in self._entries(Path(folder.path), listing):
                problem = self._file_problem(entry, first, today)
                stat = None if problem else _stat(entry)
                if stat is None and not problem and entry.is_dir():
                    continue   # a day whose first part is still being written: next time
                if stat is None:
                    listing.skipped.append(Skipped(self._name(entry.path), problem or "vanished or cannot be read"))
                    continue
                found = DropFile(stream, folder.name, entry.name.removesuffix(SUFFIX), Path(entry.path),
                                 stat.st_mtime_ns, stat.st_size)
                (listing.files if found.day <= last else listing.waiting).append(found)
        listing.files.sort(key=lambda f: (f.day, f.model))
        return listing

    def _entries(self, folder: Path, listing: Listing) -> list[os.DirEntry]:
        """The visible entries of a folder that stays inside the drop folder, by name; hidden
        entries, a link out of the drop folder and a folder that cannot be listed are reported in `listing`."""
        if not folder.exists():
            return []
        if folder.is_symlink() and not self._inside(folder):
            listing.skipped.append(Skipped(self._name(folder), LINK_OUT))
            return []
        try:
            with os.scandir(folder) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as e:
            listing.skipped.append(Skipped(self._name(folder), f"cannot be listed: {e.strerror}"))
            return []
        listing.skipped += [Skipped(self._name(e.path), "hidden") for e in entries if e.name.startswith(".")]
        return [e for e in entries if not e.name.startswith(".")]

    def _folder_problem(self, entry: os.DirEntry) -> str | None:
        """Why an entry at the top of a stream is not a model folder, or None."""
        if entry.is_symlink() and not self._inside(Path(entry.path)):
            return LINK_OUT
        if not entry.is_dir():
            return "not in a model folder"
        problem = model_name_problem(entry.name)
        return f"folder name {problem}" if problem else None

    def _file_problem(self, entry: os.DirEntry, first: str, today: str) -> str | None:
        """Why an entry of a model folder is not a usable file, or None."""
        day = entry.name.removesuffix(SUFFIX)
        if entry.is_symlink() and not self._inside(Path(entry.path)):   # its folder is known to be inside
            return LINK_OUT
        if not entry.name.endswith(SUFFIX) or not is_day(day):
            return "a nested folder" if entry.is_dir() else f"not named YYYY-MM-DD{SUFFIX}"
        if day < first:
            return f"dated before the first window, {first}"
        if day > today:
            return f"dated after today, {today}"
        return None

    def _inside(self, path: Path) -> bool:
        """Whether `path`, through any links (its own or its folders'), stays inside the drop folder."""
        try:
            return path.resolve(strict=True).is_relative_to(self.root.resolve())
        except (OSError, RuntimeError):     # a dangling link, or a loop of links
            return False

    def _name(self, path: str | Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def read_predictions(self, model: str, day: str) -> pd.DataFrame | None:
        path = self.root / INFERENCE / model / f"{day}.parquet"
        return read_file(path) if has_rows(path) else None

    def read_labels(self, model: str) -> pd.DataFrame:
        """All labels of a model that have arrived so far (one row per prediction id)."""
        paths = sorted(p for p in (self.root / LABELS / model).glob("*.parquet") if has_rows(p))
        if not paths:
            return pd.DataFrame({"prediction_id": pd.Series(dtype=str), "label": pd.Series(dtype=float)})
        labels = pd.concat([read_file(p, LABEL_COLUMNS) for p in paths], ignore_index=True)
        return labels.drop_duplicates("prediction_id", keep="last")

    def read_labels_for(self, model: str, window: str, max_delay_days: int = MAX_LABEL_DELAY_DAYS,
                        arrivals: Callable[[str], pd.DataFrame | None] | None = None) -> pd.DataFrame:
        """The labels that can belong to one window's predictions: those that arrived on the
        window's day or up to `max_delay_days` later (one row per prediction id, newest wins).
        Reading only those files keeps a window's cost flat as the model's history grows.
        `arrivals` reads one day's arrivals (default: `read_arrivals`); a caller that also needs
        a day's arrivals for itself passes a reader that keeps what it read."""
        arrivals = arrivals or (lambda day: self.read_arrivals(model, day))
        days = pd.date_range(window, periods=max_delay_days + 1, freq="D").strftime("%Y-%m-%d")
        frames = [f for day in days if (f := arrivals(day)) is not None]
        if not frames:
            return pd.DataFrame({"prediction_id": pd.Series(dtype=str), "label": pd.Series(dtype=float)})
        return pd.concat(frames, ignore_index=True).drop_duplicates("prediction_id", keep="last")

    def read_arrivals(self, model: str, arrival_day: str) -> pd.DataFrame | None:
        """The labels that arrived on one day (the next elements of the model's error stream)."""
        path = self.root / LABELS / model / f"{arrival_day}.parquet"
        return read_file(path, LABEL_COLUMNS) if has_rows(path) else None

    def label_days(self, arrival: DropFile, predictions: Iterable[DropFile], max_delay_days: int) -> LabelDays:
        """The windows whose labels arrived in one label file: the windows to refresh.

        `predictions` are the model's usable prediction files; only those a label could belong to
        (at most `max_delay_days` before its arrival) are read, so the cost does not grow with the
        model's history. A file that cannot be read is reported in the answer, never raised: an
        unreadable label file belongs to no window, an unreadable prediction file is left out.
        """
        found = LabelDays()
        labelled = self._prediction_ids(arrival.path, found)
        earliest = (date.fromisoformat(arrival.day) - timedelta(days=max_delay_days)).isoformat()
        for window in sorted((p for p in predictions if earliest <= p.day <= arrival.day), key=lambda p: p.day):
            if labelled and labelled & self._prediction_ids(window.path, found):
                found.days.append(window.day)
        return found

    def _prediction_ids(self, path: Path, found: LabelDays) -> set:
        """The prediction ids in a file; none (and the reason in `found`) when it cannot be read."""
        try:
            return set(read_file(path, ("prediction_id",))["prediction_id"])
        except InferenceInputError as e:
            name = self._name(path)
            reason = one_line(str(e).replace(f"{path}: ", ""))      # the drop folder names the file itself
            found.unreadable.append(Skipped(name, f"its prediction ids cannot be read: {reason}"))
            return set()

    def window_days(self, model: str) -> list[str]:
        return sorted(p.stem for p in (self.root / INFERENCE / model).glob("*.parquet") if has_rows(p))

    def write_window(self, model: str, day: str, frame: pd.DataFrame) -> Path:
        residency.check(residency.ROWS, "window storage", self.root / WINDOWS)
        return write_parquet(frame, self.root / WINDOWS / model / f"{day}.parquet")

    def read_window(self, model: str, day: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        path = self.root / WINDOWS / model / f"{day}.parquet"
        return read_file(path, columns) if path.exists() else None


def has_rows(path: Path) -> bool:
    """Whether a day is there to read: a file, or a folder with at least one part (a folder whose
    first part is still being written is not a day yet)."""
    if path.is_dir():
        return any(_is_part(name) for name in os.listdir(path))
    return path.exists()


def _is_part(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith((".", "_"))


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
    parsed = _as_utc(timestamps)
    unreadable = int((parsed.isna() & ~absent).sum())
    if unreadable:
        problems.append(f"{unreadable} rows with a timestamp that is not a time")
    start = pd.Timestamp(day, tz="UTC")   # compared as instants: formatting 5,000 dates cost more than the rest
    outside = int((parsed.notna() & ((parsed < start) | (parsed >= start + pd.Timedelta(days=1)))).sum())
    if outside:
        problems.append(f"{outside} rows with a timestamp outside {day}")
    return problems


def _as_utc(timestamps: pd.Series) -> pd.Series:
    """Timestamps as UTC instants, what is not a time NaT. Already typed as times (Parquet), they
    are only converted: parsing 5,000 typed times one by one was a tenth of a window's stage."""
    if pd.api.types.is_datetime64_any_dtype(timestamps):
        return timestamps.dt.tz_convert("UTC") if timestamps.dt.tz is not None else timestamps.dt.tz_localize("UTC")
    return pd.to_datetime(timestamps, utc=True, errors="coerce", format="mixed")


def is_day(text: str) -> bool:
    """Whether `text` is a real calendar day written YYYY-MM-DD (not 2026-02-30, not 20261105)."""
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


class _Version(NamedTuple):
    st_mtime_ns: int
    st_size: int


def _stat(entry: os.DirEntry) -> _Version | None:
    """A file's version; for a day written in parts (a folder), the folder's modification time,
    which moves with every part renamed into it, and the parts' total size."""
    try:
        stat = entry.stat()
        if not entry.is_dir():
            return _Version(stat.st_mtime_ns, stat.st_size)
        with os.scandir(entry.path) as parts:
            sizes = [p.stat().st_size for p in parts if _is_part(p.name)]
    except OSError:
        return None
    return _Version(stat.st_mtime_ns, sum(sizes)) if sizes else None
