"""History-aware health: is a signal unusual for *this* model, judged against its own past windows?

The drift engine compares each window with the whole reference. When a model's inputs follow a
weekly cycle, the reference mixes every day of the week, so each weekend window differs from it
and a fixed rule pages every weekend although nothing is new. Here every signal of a window (a
feature's drift effect size, a metric) is compared with the same signal in the model's past
windows of the same season (by default the same weekday): the expected value is their median and
the scale their median absolute deviation, both robust to the odd bad window in the history.

A feature then alerts only when both agree (``combine``): the drift engine says it drifted
(significant and past its effect floor) AND its effect size is unusually high for this weekday.
docs/health.md documents the rule and its defaults; bench/bench_history.py measures them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from watchkeeper.performance import HIGHER_IS_BETTER
from watchkeeper.store import MonitoringStore

UP, DOWN, BOTH = "up", "down", "both"
DRIFT, METRIC = "drift:", "metric:"
HISTORY_DAYS = 56   # eight weeks: eight past windows per weekday for the seasonal median
MAD_TO_SD = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal data

Season = Callable[[date], Hashable]


def weekday(day: date) -> str:
    """Season of a daily window: its day of the week ("Mon" ... "Sun")."""
    return day.strftime("%a")


def weekend(day: date) -> str:
    """Two seasons, for short histories where seven weekday groups would each be too thin."""
    return "weekend" if day.weekday() >= 5 else "weekday"


def no_season(day: date) -> str:
    """One season: every past window counts (a plain robust baseline)."""
    return "all"


def drift_signal(feature: str) -> str:
    return f"{DRIFT}{feature}"


def metric_signal(metric: str) -> str:
    return f"{METRIC}{metric}"


def direction(signal: str) -> str:
    """Which way is bad: effect sizes only matter when they rise; metrics by their orientation."""
    if signal.startswith(DRIFT):
        return UP
    name = signal.removeprefix(METRIC)
    if signal.startswith(METRIC) and name in HIGHER_IS_BETTER:
        return DOWN if HIGHER_IS_BETTER[name] else UP
    return BOTH


def window_signals(drift_report: Mapping | None, metrics: Iterable[Mapping] = ()) -> dict[str, float]:
    """The signals of one window: each feature's drift effect size and each metric's value.

    An effect size or metric that could not be computed (None) becomes NaN: it is kept, and
    simply neither judged nor counted in a later window's history.
    """
    features = drift_report["features"] if drift_report else []
    signals = {drift_signal(f["name"]): _float(f["effect_size"]) for f in features}
    return signals | {metric_signal(m["name"]): _float(m["value"]) for m in metrics}


def history_frame(windows: Iterable[tuple[date | str, Mapping[str, float]]]) -> pd.DataFrame:
    """Past windows as a frame: one row per window date (sorted), one column per signal."""
    rows = [(_as_date(day), dict(signals)) for day, signals in windows]
    frame = pd.DataFrame.from_dict(dict(rows), orient="index", dtype=float)
    if len(frame) < len(rows):
        raise ValueError("history has duplicate windows: one row per window date")
    return frame.sort_index()


def stored_history(store: MonitoringStore, model: str, version: str, before: date | str,
                   days: int = HISTORY_DAYS) -> pd.DataFrame:
    """The history for the window `before`: signals of the model version's stored windows of the
    previous `days` days.

    Only windows of the same version count: effect sizes are distances to that version's
    reference, and a retrained model has a new reference and a new normal. The look-back is
    bounded so that a model's verdict costs the same in its third year as in its third week.
    """
    end = _as_date(before)
    bounds = {"since": (end - timedelta(days=days)).isoformat(), "before": end.isoformat()}
    windows: dict[date, dict[str, float]] = {}
    for drift in store.drift(model, **bounds):
        if drift.version == version:
            windows.setdefault(_as_date(drift.window), {}).update(window_signals(drift.report))
    for metric in store.metrics(model, **bounds):
        if metric.version == version:
            windows.setdefault(_as_date(metric.window), {})[metric_signal(metric.metric)] = _float(metric.value)
    return history_frame(windows.items())


@dataclass(frozen=True)
class Anomaly:
    """How one signal of a window compares with the model's own history.

    ``score`` is the deviation in the bad direction, in scale units (negative: better than usual).
    ``is_anomalous`` is None when the signal was not judged (no value, or too little history).
    ``basis`` says which past windows set the expectation: "season", "all" or "none".
    """

    signal: str
    value: float
    expected: float | None
    scale: float | None
    score: float | None
    is_anomalous: bool | None
    season: Hashable
    n_history: int
    basis: str
    reason: str

    def to_dict(self) -> dict:
        """JSON-safe: NaN (no value) becomes None."""
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _Stats:
    """Median, MAD and count per signal, for one set of past windows."""

    median: pd.Series
    mad: pd.Series
    count: pd.Series


class SeasonalBaseline:
    """Robust seasonal baseline: median and MAD of the same season's past windows.

    Parameters (defaults measured in bench/bench_history.py, documented in docs/health.md):
        season: maps a window's date to its season; same-season windows set the expectation.
        threshold = 4.0: a signal is anomalous when it is more than `threshold` scales worse
            than expected.
        min_history = 7: with fewer past windows of a signal, it is not judged (one week).
        min_season_history = 3: with fewer same-season windows, all past windows set the
            expectation instead (the seasonal group is too thin for a median).
        min_scale = 0.025: floor on the scale, so a flat history does not turn every wiggle into
            an anomaly; 4 x 0.025 = 0.1 is the drift engine's own effect floor (Wasserstein, sd).
        min_relative_scale = 0.02: floor on the scale relative to the expected value, for
            signals in their own units (an MAE of 40 cannot be judged with a 0.025 floor).

    ``fit(history)`` learns per-season and overall statistics of every signal at once;
    ``score(day, values)`` judges all signals of a new window in one vectorised pass.

    >>> history = history_frame([(date(2026, 1, 5) + pd.Timedelta(days=i), {"drift:x": 0.05 + 0.8 * (i % 7 >= 5)})
    ...                          for i in range(28)])
    >>> baseline = SeasonalBaseline().fit(history)
    >>> baseline.score(date(2026, 2, 7), {"drift:x": 0.85})["drift:x"].is_anomalous  # a Saturday
    False
    >>> baseline.score(date(2026, 2, 4), {"drift:x": 0.85})["drift:x"].is_anomalous  # a Wednesday
    True
    """

    def __init__(self, season: Season = weekday, threshold: float = 4.0, min_history: int = 7,
                 min_season_history: int = 3, min_scale: float = 0.025, min_relative_scale: float = 0.02) -> None:
        self.season = season
        self.threshold = threshold
        self.min_history = min_history
        self.min_season_history = min_season_history
        self.min_scale = min_scale
        self.min_relative_scale = min_relative_scale

    def fit(self, history: pd.DataFrame) -> SeasonalBaseline:
        """Learn from past windows: a frame indexed by window date, one column per signal."""
        self._check_params()
        frame = _check_history(history)
        seasons = pd.Index([self.season(day) for day in frame.index], name="season")
        grouped = frame.groupby(seasons)
        median = grouped.median()
        residual = (frame - median.reindex(seasons).to_numpy()).abs()
        self.seasonal_ = _Stats(median, residual.groupby(seasons).median(), grouped.count())
        overall = frame.median()
        self.overall_ = _Stats(overall, (frame - overall).abs().median(), frame.count())
        self.last_window_ = frame.index.max() if len(frame) else None
        return self

    def score(self, day: date | str, values: Mapping[str, float | None],
              directions: Mapping[str, str] | None = None) -> dict[str, Anomaly]:
        """Judge every signal of the window dated `day`; directions default to `direction(signal)`."""
        if not hasattr(self, "overall_"):
            raise ValueError("SeasonalBaseline is not fitted: call fit(history) first")
        day = _as_date(day)
        if self.last_window_ is not None and day <= self.last_window_:
            raise ValueError(f"window {day} is not after the history's last window {self.last_window_}: "
                             "its baseline must not contain itself or later windows")
        names = list(values)
        ways = [(directions or {}).get(n) or direction(n) for n in names]
        bad = sorted({w for w in ways if w not in (UP, DOWN, BOTH)})
        if bad:
            raise ValueError(f"directions must be up, down or both, got {', '.join(map(str, bad))}")
        value = np.array([_float(values[n]) for n in names], dtype=float)
        season = self.season(day)
        judged = self._judge(season, names, value, ways)
        return {n: self._anomaly(judged, i, n, season, value[i]) for i, n in enumerate(names)}

    def _judge(self, season: Hashable, names: list[str], value: np.ndarray, ways: list[str]) -> dict[str, np.ndarray]:
        """Expected value, scale, score and verdict of every signal as arrays (NaN-safe: not judged)."""
        stats = ("median", "mad", "count")
        overall = {k: getattr(self.overall_, k).reindex(names).to_numpy(dtype=float) for k in stats}
        has_season = season in self.seasonal_.median.index
        seasonal = {k: (getattr(self.seasonal_, k).loc[season].reindex(names).to_numpy(dtype=float) if has_season
                        else np.full(len(names), np.nan)) for k in stats}
        count_all = np.nan_to_num(overall["count"])
        use_season = np.nan_to_num(seasonal["count"]) >= self.min_season_history
        pick = {k: np.where(use_season, seasonal[k], overall[k]) for k in overall}
        expected = pick["median"]
        scale = np.fmax.reduce([MAD_TO_SD * pick["mad"], np.full(len(names), self.min_scale),
                                self.min_relative_scale * np.abs(expected)])
        deviation = (value - expected) / scale
        sign = np.array([{UP: 1.0, DOWN: -1.0, BOTH: 0.0}[w] for w in ways])
        score = np.where(sign == 0, np.abs(deviation), sign * deviation)
        judged = (count_all >= self.min_history) & np.isfinite(value)
        return {"expected": expected, "scale": scale, "score": score, "anomalous": judged & (score > self.threshold),
                "way": np.array(ways),
                "n": np.where(use_season, seasonal["count"], count_all).astype(int),
                "basis": np.where(~judged, "none", np.where(use_season, "season", "all")),
                "n_season": np.nan_to_num(seasonal["count"]).astype(int), "n_all": count_all.astype(int)}

    def _anomaly(self, j: dict[str, np.ndarray], i: int, signal: str, season: Hashable, value: float) -> Anomaly:
        """Signal i's verdict, with a one-line reason for model_health's evidence."""
        basis, n_all = str(j["basis"][i]), int(j["n_all"][i])
        if not np.isfinite(value) or basis == "none":
            why = ("no value in this window" if not np.isfinite(value) else
                   f"history too short: {n_all} past windows, need {self.min_history}")
            return Anomaly(signal, value, None, None, None, None, season, n_all, basis, f"{why}; not judged")
        n, expected, scale, score = int(j["n"][i]), *(float(j[k][i]) for k in ("expected", "scale", "score"))
        anomalous = bool(j["anomalous"][i])
        where = (f"{n} past {season} windows" if basis == "season" else
                 f"all {n} past windows (only {j['n_season'][i]} of season {season})")
        word = "away" if j["way"][i] == BOTH else "worse" if score > 0 else "better"
        reason = (f"{'anomalous' if anomalous else 'usual'}: {value:.4g} against the median {expected:.4g} of {where} "
                  f"is {abs(score):.1f} scales {word} (scale {scale:.3g}, threshold {self.threshold:g})")
        return Anomaly(signal, value, expected, scale, score, anomalous, season, n, basis, reason)

    def _check_params(self) -> None:
        if self.threshold <= 0 or self.min_scale < 0 or self.min_relative_scale < 0:
            raise ValueError("threshold must be > 0 and the scale floors >= 0")
        if self.min_scale == 0 and self.min_relative_scale == 0:
            raise ValueError("set min_scale or min_relative_scale > 0: a flat history would make any change anomalous")
        if self.min_history < 1 or self.min_season_history < 1:
            raise ValueError("min_history and min_season_history must be >= 1")


def score_sequence(baseline: SeasonalBaseline, windows: Iterable[tuple[date | str, Mapping[str, float]]],
                   history: pd.DataFrame | None = None,
                   directions: Mapping[str, str] | None = None) -> list[dict[str, Anomaly]]:
    """Score windows in date order, each against `history` plus the windows before it (a backfill)."""
    past = [] if history is None else [(day, row.to_dict()) for day, row in history.iterrows()]
    scored = []
    for day, signals in sorted(windows, key=lambda w: _as_date(w[0])):
        scored.append(baseline.fit(history_frame(past)).score(day, signals, directions))
        past.append((day, signals))
    return scored


@dataclass(frozen=True)
class SignalDecision:
    """Whether one signal alerts, and the evidence: the statistical verdict and the history's."""

    signal: str
    alert: bool
    statistical: bool  # the drift engine's verdict (features) or the performance test's (metrics)
    anomaly: Anomaly | None
    reason: str

    @property
    def fired(self) -> bool:
        """Either leg fired: worth recording in model_health even when it does not alert."""
        return self.statistical or bool(self.anomaly and self.anomaly.is_anomalous)

    def to_dict(self) -> dict:
        return {"signal": self.signal, "alert": self.alert, "statistical": self.statistical,
                "anomaly": self.anomaly.to_dict() if self.anomaly else None, "reason": self.reason}


def combine(drift_report: Mapping, anomalies: Mapping[str, Anomaly],
            degraded: Mapping[str, bool] | None = None) -> list[SignalDecision]:
    """Alert on a signal only when the statistical test fires AND the history finds it unusual.

    Features: the drift engine's `drifted` AND an anomalous effect size. Metrics (`degraded`:
    metric name -> the performance test's verdict) likewise. When the history cannot judge a
    signal (too short, no value), the statistical decision stands. A feature drifted on its
    missing rate keeps the engine's decision: its effect-size history says nothing about nulls.
    """
    decisions = []
    for f in drift_report["features"]:
        on_missing = "missing_rate" in (f.get("reason") or "")
        decisions.append(_decide(drift_signal(f["name"]), bool(f["drifted"]), anomalies.get(drift_signal(f["name"])),
                                 "drifted", "on its missing rate" if on_missing else None))
    for name, is_bad in (degraded or {}).items():
        decisions.append(_decide(metric_signal(name), bool(is_bad), anomalies.get(metric_signal(name)), "degraded"))
    return decisions


def _decide(signal: str, statistical: bool, anomaly: Anomaly | None, what: str,
            stands: str | None = None) -> SignalDecision:
    """The rule for one signal; `stands` says why the statistical decision holds whatever the history."""
    if not statistical:
        return SignalDecision(signal, False, False, anomaly, f"not {what} per the statistical test")
    if stands is None and (anomaly is None or anomaly.is_anomalous is None):
        stands = anomaly.reason if anomaly else "no history for this signal"
    if stands:
        return SignalDecision(signal, True, True, anomaly, f"{what}; {stands}: the statistical decision stands")
    if anomaly.is_anomalous:
        return SignalDecision(signal, True, True, anomaly, f"{what}, and the history says {anomaly.reason}")
    return SignalDecision(signal, False, True, anomaly,
                          f"{what} against the reference, but the history says {anomaly.reason}")


def evidence(decisions: Iterable[SignalDecision]) -> list[dict]:
    """The decisions worth recording in model_health: every signal where either leg fired."""
    return [d.to_dict() for d in decisions if d.fired]


def _check_history(history: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"history must be a DataFrame (window date x signal), got {type(history).__name__}")
    frame = history.copy()
    frame.index = [_as_date(d) for d in frame.index]
    if frame.index.has_duplicates:
        raise ValueError(f"history has duplicate windows: {sorted(set(frame.index[frame.index.duplicated()]))[:5]}")
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError):
        raise ValueError("history values must be numeric (NaN for a missing signal)") from None
    if np.isinf(frame.to_numpy()).any():
        raise ValueError("history contains infinite values")
    return frame.sort_index()


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"window {value!r} is not a date (YYYY-MM-DD)") from None


def _float(value) -> float:
    """A plain float; None and non-finite values become NaN (not judged, never an error)."""
    value = float("nan") if value is None else float(value)
    return value if np.isfinite(value) else float("nan")
