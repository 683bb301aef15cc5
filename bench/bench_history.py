"""History-aware health: the seasonal baseline against a fixed threshold and river's detectors.

Each scenario is a daily series for one signal of one model: 4 reference weeks (the history every
method starts from, the reference's own days scored against its profile) and 8 production weeks.
The drift signals come from the real drift engine (fit_profile on the reference, evaluate_drift per
day), the accuracy signal from compute_metrics and is_degraded (tolerance 0.05). Every method
alerts only when the statistical test fires AND its detector finds the value unusual, except
"fixed", which is the statistical test alone. Null replicates (no shift) give the false alerts;
shifted replicates (the shift starts on production day 14 + r % 7, so on every weekday alike)
give the detection rate within 7 days and the delay of the first alert.

    .venv/bin/python bench/bench_history.py [--replicates 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from river import anomaly, time_series

from watchkeeper.drift import evaluate_drift
from watchkeeper.history import DOWN, UP, SeasonalBaseline, history_frame, no_season, score_sequence, weekday, weekend
from watchkeeper.performance import BINARY, compute_metrics, is_degraded
from watchkeeper.profile import fit_profile

START = date(2026, 1, 5)  # a Monday
HISTORY_DAYS, PRODUCTION_DAYS, SHIFT_DAY, DETECT_WITHIN = 28, 56, 14, 7
SIGMA4 = 0.99994  # river's Gaussian score 2|CDF - 0.5| at 4 standard deviations, like our threshold of 4


@dataclass(frozen=True)
class Scenario:
    name: str
    way: str  # the bad direction of the signal
    weekday_rows: int
    weekend_rows: int
    weekday_level: float  # x's mean, or the accuracy, on weekdays
    weekend_level: float
    shift: float  # added to every day from the shift on


SCENARIOS = [
    Scenario("drift, weekend pattern, equal traffic", UP, 1000, 1000, 0.0, 1.5, 1.0),
    Scenario("drift, weekend pattern, quiet weekends", UP, 1000, 100, 0.0, 1.5, 1.0),
    Scenario("drift, no season, small shift", UP, 500, 500, 0.0, 0.0, 0.3),
    Scenario("accuracy, weekend dip", DOWN, 500, 500, 0.90, 0.75, -0.15),
]


@dataclass
class Series:
    """One replicate: the signal and the statistical verdict of every day (history first)."""

    values: np.ndarray
    statistical: np.ndarray
    shift_at: int | None  # production day the shift starts, None for a null replicate


def days() -> list[date]:
    return [START + timedelta(days=i) for i in range(HISTORY_DAYS + PRODUCTION_DAYS)]


def level(s: Scenario, day: date, shifted: bool) -> tuple[int, float]:
    saturday_or_sunday = day.weekday() >= 5
    return (s.weekend_rows if saturday_or_sunday else s.weekday_rows,
            (s.weekend_level if saturday_or_sunday else s.weekday_level) + (s.shift if shifted else 0.0))


def drift_series(s: Scenario, rng: np.random.Generator, shift_at: int | None) -> Series:
    frames = []
    for i, day in enumerate(days()):
        n, mean = level(s, day, shift_at is not None and i >= HISTORY_DAYS + shift_at)
        frames.append(pd.DataFrame({"x": rng.normal(mean, 1.0, n)}))
    profile = fit_profile(pd.concat(frames[:HISTORY_DAYS], ignore_index=True))
    features = [evaluate_drift(profile, f).to_dict()["features"][0] for f in frames]
    return Series(np.array([f["effect_size"] for f in features]), np.array([f["drifted"] for f in features]), shift_at)


def accuracy_series(s: Scenario, rng: np.random.Generator, shift_at: int | None) -> Series:
    outcomes = []
    for i, day in enumerate(days()):
        n, p = level(s, day, shift_at is not None and i >= HISTORY_DAYS + shift_at)
        outcomes.append(rng.random(n) < p)
    reference = _accuracy(np.concatenate(outcomes[:HISTORY_DAYS]))
    windows = [_accuracy(o) for o in outcomes]
    return Series(np.array([w.value for w in windows]), np.array([is_degraded(w, reference, 0.05) for w in windows]),
                  shift_at)


def _accuracy(correct: np.ndarray):
    y = np.ones(len(correct), dtype=int)
    metrics = compute_metrics(BINARY, y, np.where(correct, 1, 0), classes=[0, 1])
    return next(m for m in metrics if m.name == "accuracy")


# ---------------------------------------------------------------- detectors: bool[replicate, production day]


def ours(season, threshold: float = 4.0) -> Callable[[list[Series], str], np.ndarray]:
    """SeasonalBaseline over all replicates at once: each replicate is one signal (column)."""
    def detect(replicates: list[Series], way: str) -> np.ndarray:
        names = [f"r{r}" for r in range(len(replicates))]
        frame = np.array([s.values for s in replicates])
        history = history_frame((d, dict(zip(names, frame[:, i]))) for i, d in enumerate(days()[:HISTORY_DAYS]))
        windows = [(d, dict(zip(names, frame[:, HISTORY_DAYS + i]))) for i, d in enumerate(days()[HISTORY_DAYS:])]
        baseline = SeasonalBaseline(season=season, threshold=threshold)
        scored = score_sequence(baseline, windows, history, directions=dict.fromkeys(names, way))
        # not judged (None) lets the statistical decision stand, as in history.combine
        return np.array([[window[n].is_anomalous is not False for window in scored] for n in names])
    return detect


class Gaussian:
    """river's GaussianScorer over the whole series."""

    def __init__(self) -> None:
        self.detector = anomaly.GaussianScorer(grace_period=7)

    def step(self, day: date, value: float) -> float:
        score = self.detector.score_one(None, value)
        self.detector.learn_one(None, value)
        return score


class GaussianPerWeekday:
    """One GaussianScorer per weekday: seasonal, but mean and standard deviation, not robust."""

    def __init__(self) -> None:
        self.detectors = {d: anomaly.GaussianScorer(grace_period=3) for d in range(7)}

    def step(self, day: date, value: float) -> float:
        detector = self.detectors[day.weekday()]
        score = detector.score_one(None, value)
        detector.learn_one(None, value)
        return score


class HoltWinters:
    """PredictiveAnomalyDetection on a weekly Holt-Winters forecast: 1.0 when the squared error
    passes the running mean + 3 sd of past squared errors."""

    def __init__(self) -> None:
        self.detector = anomaly.PredictiveAnomalyDetection(
            time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.3, seasonality=7), n_std=3.0, warmup_period=14)
        self.seen = 0

    def step(self, day: date, value: float) -> float:
        score = self.detector.score_one(None, value) if self.seen >= 7 else 0.0  # no forecast before a season
        self.detector.learn_one(None, value)
        self.seen += 1
        return 1.0 if score >= 1.0 else 0.0


def river_detector(make: Callable[[], Gaussian | GaussianPerWeekday | HoltWinters]
                   ) -> Callable[[list[Series], str], np.ndarray]:
    """A river detector fed each day in order, history included: score (before learning it), then learn."""
    def detect(replicates: list[Series], way: str) -> np.ndarray:
        out = np.zeros((len(replicates), PRODUCTION_DAYS), dtype=bool)
        for r, s in enumerate(replicates):
            detector = make()
            scores = [detector.step(day, float(value)) for day, value in zip(days(), s.values)]
            out[r] = np.array(scores[HISTORY_DAYS:]) >= SIGMA4
        return out
    return detect


METHODS = {
    "fixed (statistical test alone)": None,
    "seasonal baseline (weekday, ours)": ours(weekday),
    "  same, threshold 3": ours(weekday, 3.0),
    "  same, threshold 5": ours(weekday, 5.0),
    "  same, season = weekend/weekday": ours(weekend),
    "robust baseline, no season": ours(no_season),
    "river GaussianScorer": river_detector(Gaussian),
    "river GaussianScorer per weekday": river_detector(GaussianPerWeekday),
    "river PAD + HoltWinters(7)": river_detector(HoltWinters),
}


def evaluate(s: Scenario, replicates: int, seed: int) -> list[dict]:
    make = accuracy_series if s.name.startswith("accuracy") else drift_series
    rng = np.random.default_rng(seed)
    null = [make(s, rng, None) for _ in range(replicates)]
    shifted = [make(s, rng, SHIFT_DAY + r % 7) for r in range(replicates)]
    rows = []
    for method, detector in METHODS.items():
        alerts = {}
        for name, group in (("null", null), ("shifted", shifted)):
            statistical = np.array([g.statistical[HISTORY_DAYS:] for g in group])
            alerts[name] = statistical if detector is None else statistical & detector(group, s.way)
        rows.append({"scenario": s.name, "method": method} | _figures(alerts["null"], alerts["shifted"], shifted))
    return rows


def _figures(null_alerts: np.ndarray, shifted_alerts: np.ndarray, shifted: list[Series]) -> dict:
    weekends = np.array([d.weekday() >= 5 for d in days()[HISTORY_DAYS:]])
    delays = []
    for alerts, s in zip(shifted_alerts, shifted):
        hits = np.flatnonzero(alerts[s.shift_at:s.shift_at + DETECT_WITHIN])
        delays.append(hits[0] if len(hits) else None)
    found = [d for d in delays if d is not None]
    weekend_share = null_alerts[:, weekends].sum() / null_alerts.sum() if null_alerts.any() else None
    return {"false/100": 100 * null_alerts.mean(), "weekend share": weekend_share,
            "detected": len(found) / len(delays), "median delay": float(np.median(found)) if found else None,
            "max delay": max(found) if found else None}


def scaling(n_signals: int = 1000) -> float:
    """Seconds to fit on 84 past windows and score one window, for n_signals signals at once."""
    rng = np.random.default_rng(0)
    names = [f"drift:f{i}" for i in range(n_signals)]
    history = history_frame((d, dict(zip(names, rng.random(n_signals)))) for d in days())
    start = time.perf_counter()
    SeasonalBaseline().fit(history).score(START + timedelta(days=len(days())), dict(zip(names, rng.random(n_signals))))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [row for i, s in enumerate(SCENARIOS) for row in evaluate(s, args.replicates, args.seed + i)]
    table = pd.DataFrame(rows).set_index(["scenario", "method"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.2f}".format):
        print(table.to_string())
    print(f"\n{args.replicates} null + {args.replicates} shifted replicates x {PRODUCTION_DAYS} production days per "
          f"scenario; detection within {DETECT_WITHIN} days; delay in days from the shift's first day.")
    print(f"fit on {len(days())} past windows + score one window, 1,000 signals at once: {1000 * scaling():.0f} ms")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
