"""History-aware health: a weekly pattern in the inputs must not page anyone; a real shift must.

The scenario test runs the real drift engine (fit_profile + evaluate_drift per daily window) and
judges each window against the model's own past windows; the baseline statistics are checked
against numpy/scipy, and the history is read back from a real SQLite monitoring store.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import median_abs_deviation

from watchkeeper.drift import evaluate_drift
from watchkeeper.history import (
    Anomaly,
    SeasonalBaseline,
    combine,
    evidence,
    history_frame,
    score_sequence,
    stored_history,
    weekday,
    weekend,
    window_signals,
)
from watchkeeper.profile import fit_profile
from watchkeeper.store import MonitoringStore

MONDAY = date(2026, 1, 5)


def days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


# ---------------------------------------------------------------- the seasonal scenario (issue's "done when")


def seasonal_scenario(weekend_rows: int, seed: int = 0):
    """4 reference weeks and 6 production weeks of daily windows; x ~ N(0,1) on weekdays and
    N(1.5,1) on weekends in every week; from production week 3 on, x shifts by +1.0 on all days.

    Returns the drift reports of the reference days (each scored against the whole reference, as
    the model's starting history) and of the production days.
    """
    rng = np.random.default_rng(seed)

    def window(day: date, shift: float) -> pd.DataFrame:
        weekend_day = day.weekday() >= 5
        n = weekend_rows if weekend_day else 1000
        return pd.DataFrame({"x": rng.normal((1.5 if weekend_day else 0.0) + shift, 1.0, n)})

    reference_days, production_days = days(MONDAY, 28), days(MONDAY + timedelta(weeks=4), 42)
    reference = [window(d, 0.0) for d in reference_days]
    profile = fit_profile(pd.concat(reference, ignore_index=True))
    history = [(d, evaluate_drift(profile, w).to_dict()) for d, w in zip(reference_days, reference)]
    production = [(d, evaluate_drift(profile, window(d, 1.0 if i >= 14 else 0.0)).to_dict())
                  for i, d in enumerate(production_days)]
    return history, production


def alerts_by_rule(history, production) -> tuple[np.ndarray, np.ndarray]:
    """(fixed rule, history-aware rule) alerts per production day, accumulating history day by day."""
    fixed = np.array([report["dataset_drift"] for _, report in production])
    scored = score_sequence(SeasonalBaseline(), [(d, window_signals(r)) for d, r in production],
                            history_frame((d, window_signals(r)) for d, r in history))
    aware = np.array([any(d.alert for d in combine(report, anomalies))
                      for (_, report), anomalies in zip(production, scored)])
    return fixed, aware


@pytest.mark.parametrize("weekend_rows", [1000, 100], ids=["equal-traffic", "quiet-weekends"])
@pytest.mark.parametrize("seed", [0, 1])
def test_weekend_pattern_is_not_an_alert_but_a_week_3_shift_is(weekend_rows, seed):
    history, production = seasonal_scenario(weekend_rows, seed)
    fixed, aware = alerts_by_rule(history, production)
    weekends = np.array([d.weekday() >= 5 for d, _ in production])
    week = np.arange(len(production)) // 7

    assert fixed[weekends].all(), "the fixed rule must page on every weekend: weekends differ from the reference"
    assert not aware[week < 2].any(), f"history-aware alerts before the shift on days {np.flatnonzero(aware[week < 2])}"
    assert aware[(week == 2) & weekends].all(), "history-aware health must flag the shift in week 3"
    if weekend_rows < 1000:  # weekdays dominate the reference: the shift stands out on every day
        assert aware[week == 2].all()


def test_evidence_says_why_a_weekend_was_not_an_alert():
    history, production = seasonal_scenario(100)
    saturday, report = production[5]
    baseline = SeasonalBaseline().fit(history_frame((d, window_signals(r)) for d, r in history))
    [decision] = combine(report, baseline.score(saturday, window_signals(report)))
    assert weekday(saturday) == "Sat" and decision.statistical and not decision.alert
    assert decision.anomaly.basis == "season" and decision.anomaly.n_history == 4
    assert "but the history says usual" in decision.reason and "4 past Sat windows" in decision.reason
    assert evidence([decision]) == [json.loads(json.dumps(decision.to_dict()))]


# ---------------------------------------------------------------- the baseline's statistics


def weekly(values_by_week: list[list[float]], signal: str = "drift:x", start: date = MONDAY) -> pd.DataFrame:
    flat = [v for week in values_by_week for v in week]
    return history_frame((d, {signal: v}) for d, v in zip(days(start, len(flat)), flat))


def test_expectation_and_scale_are_the_same_weekday_median_and_normal_mad():
    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 0.2, size=(5, 7)).tolist()  # 5 weeks, a skewed signal
    history = weekly(values)
    wednesday = MONDAY + timedelta(weeks=5, days=2)
    baseline = SeasonalBaseline(min_scale=0.0, min_relative_scale=1e-9).fit(history)
    a = baseline.score(wednesday, {"drift:x": 2.0})["drift:x"]
    past_wednesdays = [week[2] for week in values]
    assert a.expected == pytest.approx(np.median(past_wednesdays))
    assert a.scale == pytest.approx(median_abs_deviation(past_wednesdays, scale="normal"), rel=1e-3)
    assert a.score == pytest.approx((2.0 - a.expected) / a.scale)
    assert (a.season, a.basis, a.n_history) == ("Wed", "season", 5)


def test_thin_seasonal_history_falls_back_to_all_windows_and_short_history_is_not_judged():
    history = weekly([[0.1, 0.12, 0.11, 0.13, 0.1, 0.5, 0.6], [0.12, 0.1]])  # one past Saturday
    saturday = MONDAY + timedelta(weeks=1, days=5)
    a = SeasonalBaseline().fit(history).score(saturday, {"drift:x": 0.55})["drift:x"]
    assert a.basis == "all" and a.n_history == 9 and a.expected == pytest.approx(0.12)
    assert a.is_anomalous and "only 1 of season Sat" in a.reason

    short = SeasonalBaseline().fit(weekly([[0.1, 0.1, 0.1]])).score(MONDAY + timedelta(days=3), {"drift:x": 5.0})
    assert short["drift:x"].is_anomalous is None and short["drift:x"].basis == "none"
    assert "history too short: 3 past windows, need 7" in short["drift:x"].reason


def test_a_flat_history_needs_a_change_past_the_scale_floor():
    history = weekly([[0.05] * 7] * 4)
    monday = MONDAY + timedelta(weeks=4)
    scored = SeasonalBaseline().fit(history).score(monday, {"drift:a": 0.05, "drift:x": 0.12, "drift:y": 0.2})
    assert scored["drift:x"].scale == 0.025 and not scored["drift:x"].is_anomalous  # +0.07 < 4 x 0.025
    mae = SeasonalBaseline().fit(weekly([[40.0] * 7] * 4, "metric:mae")).score(monday, {"metric:mae": 44.0})
    assert mae["metric:mae"].scale == pytest.approx(0.8) and mae["metric:mae"].is_anomalous is True  # 2% of 40
    assert scored["drift:a"].is_anomalous is None  # signals without history are not judged


def test_only_the_bad_direction_counts():
    rng = np.random.default_rng(4)
    history = history_frame((d, {"drift:x": 0.3 + 0.01 * rng.normal(), "metric:accuracy": 0.9 + 0.005 * rng.normal(),
                                 "metric:mae": 10 + 0.1 * rng.normal(), "custom": 1 + 0.01 * rng.normal()})
                            for d in days(MONDAY, 28))
    baseline = SeasonalBaseline().fit(history)
    monday = MONDAY + timedelta(weeks=4)
    better = baseline.score(monday, {"drift:x": 0.0, "metric:accuracy": 0.99, "metric:mae": 5.0, "custom": 0.5})
    worse = baseline.score(monday, {"drift:x": 0.6, "metric:accuracy": 0.8, "metric:mae": 15.0, "custom": 1.5})
    assert [a.is_anomalous for a in better.values()] == [False, False, False, True]  # custom: both ways
    assert all(a.is_anomalous for a in worse.values())
    forced = baseline.score(monday, {"custom": 0.5}, directions={"custom": "up"})
    assert forced["custom"].is_anomalous is False and forced["custom"].score < 0


def test_many_signals_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(5)
    names = [f"drift:f{i}" for i in range(50)]
    history = history_frame((d, dict(zip(names, rng.gamma(2, 0.1, 50)))) for d in days(MONDAY, 35))
    history.iloc[::3, 7] = np.nan  # a signal missing from some windows
    window = dict(zip(names, rng.gamma(2, 0.1, 50) * rng.choice([1, 5], 50)))
    day = MONDAY + timedelta(weeks=5, days=5)
    together = SeasonalBaseline().fit(history).score(day, window)
    alone = {n: SeasonalBaseline().fit(history[[n]]).score(day, {n: window[n]})[n] for n in names}
    assert together == alone
    assert together["drift:f7"].n_history == 3  # 5 Saturdays, 2 of them missing this signal


def test_a_coarser_season_pools_weekend_days():
    history = weekly([[0.1] * 5 + [0.8, 0.9]] * 2)
    a = SeasonalBaseline(season=weekend).fit(history).score(MONDAY + timedelta(weeks=2, days=5), {"drift:x": 0.9})
    assert (a["drift:x"].season, a["drift:x"].n_history, a["drift:x"].is_anomalous) == ("weekend", 4, False)


def test_bad_input_is_a_one_line_error():
    baseline = SeasonalBaseline().fit(weekly([[0.1] * 7]))
    with pytest.raises(ValueError, match="not after the history's last window"):
        baseline.score(MONDAY + timedelta(days=6), {"drift:x": 0.1})
    with pytest.raises(ValueError, match="not a date"):
        history_frame([("yesterday", {"drift:x": 0.1})])
    with pytest.raises(ValueError, match="duplicate windows"):
        history_frame([("2026-01-05", {"drift:x": 0.1}), (MONDAY, {"drift:x": 0.2})])
    with pytest.raises(ValueError, match="duplicate windows"):
        SeasonalBaseline().fit(pd.DataFrame({"drift:x": [0.1, 0.2]}, index=["2026-01-05", "2026-01-05"]))
    with pytest.raises(ValueError, match="not fitted"):
        SeasonalBaseline().score(MONDAY, {"drift:x": 0.1})
    with pytest.raises(ValueError, match="directions must be"):
        baseline.score(MONDAY + timedelta(days=7), {"drift:x": 0.1}, directions={"drift:x": "sideways"})
    with pytest.raises(ValueError, match="flat history"):
        SeasonalBaseline(min_scale=0, min_relative_scale=0).fit(weekly([[0.1] * 7]))


# ---------------------------------------------------------------- the combination rule


def anomaly(signal: str, is_anomalous: bool | None) -> Anomaly:
    return Anomaly(signal, 0.5, 0.1, 0.05, 8.0 if is_anomalous else 0.0, is_anomalous, "Mon", 4,
                   "season" if is_anomalous is not None else "none", "test")


def report(*features: tuple[str, bool, str | None]) -> dict:
    return {"dataset_drift": any(f[1] for f in features), "n_current": 100,
            "features": [{"name": n, "kind": "numeric", "effect_size": 0.5, "effect_metric": "wasserstein",
                          "drifted": drifted, "p_value": 1e-9 if drifted else 0.5, "reason": reason}
                         for n, drifted, reason in features]}


def test_alert_only_when_the_drift_engine_and_the_history_agree():
    drift = report(("both", True, "distribution"), ("usual", True, "distribution"), ("quiet", False, None),
                   ("new", True, "distribution"), ("nulls", True, "missing_rate"))
    anomalies = {"drift:both": anomaly("drift:both", True), "drift:usual": anomaly("drift:usual", False),
                 "drift:quiet": anomaly("drift:quiet", True), "drift:new": anomaly("drift:new", None),
                 "drift:nulls": anomaly("drift:nulls", False), "metric:accuracy": anomaly("metric:accuracy", False)}
    decisions = {d.signal: d for d in combine(drift, anomalies, degraded={"accuracy": True, "f1": True})}
    alerts = {s: d.alert for s, d in decisions.items()}
    assert alerts == {"drift:both": True, "drift:usual": False, "drift:quiet": False, "drift:new": True,
                      "drift:nulls": True, "metric:accuracy": False, "metric:f1": True}
    assert "statistical decision stands" in decisions["drift:new"].reason
    assert "missing rate" in decisions["drift:nulls"].reason
    assert "no history" in decisions["metric:f1"].reason
    recorded = {e["signal"] for e in evidence(decisions.values())}
    assert recorded == set(decisions)  # "quiet" fired on history alone: recorded, not alerted


# ---------------------------------------------------------------- history from the monitoring store


def test_stored_history_reads_earlier_windows_of_the_same_version(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    for i, day in enumerate(days(MONDAY, 4)):
        version = "1" if i < 3 else "2"
        store.put_drift("churn", day.isoformat(), version, report(("x", False, None)) | {"n_reference": 10})
        store.put_metrics("churn", day.isoformat(), version,
                          [{"name": "accuracy", "value": 0.9 - i / 100, "lower": None, "upper": None}], 50, 60)
    store.put_drift("other", MONDAY.isoformat(), "1", report(("y", True, None)))
    history = stored_history(store, "churn", "1", before=MONDAY + timedelta(days=2))
    assert list(history.index) == days(MONDAY, 2)
    assert history.to_dict("list") == {"drift:x": [0.5, 0.5], "metric:accuracy": [0.9, 0.89]}


def test_stored_history_looks_back_a_bounded_number_of_days(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    for day in days(MONDAY, 10):
        store.put_drift("churn", day.isoformat(), "1", report(("x", False, None)))
    history = stored_history(store, "churn", "1", before=MONDAY + timedelta(days=10), days=3)
    assert list(history.index) == days(MONDAY + timedelta(days=7), 3)
