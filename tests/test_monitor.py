"""The evaluation loop without Dagster: each model's failure stays its own, and stands until fixed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import ROOT
from watchkeeper.alerting.policy import load_policy
from watchkeeper.config import MonitoringConfig
from watchkeeper.inference_log import INFERENCE, InferenceLog
from watchkeeper.monitor import HEALTH, PERFORMANCE, WindowMonitor
from watchkeeper.performance import MetricValue
from watchkeeper.profile import fit_profile
from watchkeeper.reference import ModelReference
from watchkeeper.store import MonitoringStore

DAY = "2026-11-10"
FEATURES = ["x", "y"]
POLICY = load_policy(ROOT / "deploy" / "alerting.demo.yaml")


def rows(rng, n: int, shift: float = 0.0) -> pd.DataFrame:
    stamps = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, n)), unit="s")
    return pd.DataFrame({"timestamp": stamps, "prediction_id": [f"p{i}" for i in range(n)],
                         "prediction": rng.normal(0, 1, n), "x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n)})


@pytest.fixture
def fleet(tmp_path):
    """Three profile-only regression models with a window each: `steady`, `moved` (x shifted) and `victim`."""
    rng = np.random.default_rng(3)
    store, log = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), InferenceLog(tmp_path)
    for model, shift in (("steady", 0.0), ("moved", 1.0), ("victim", 0.0)):
        reference = ModelReference(model, "1", "regression", FEATURES, fit_profile(rows(rng, 3000)[FEATURES]),
                                   {"mae": MetricValue("mae", 0.8, 0.7, 0.9)})
        store.put_profile(model, "1", "regression", *reference.to_stored())
        (tmp_path / INFERENCE / model).mkdir(parents=True)
        rows(rng, 1000, shift).to_parquet(tmp_path / INFERENCE / model / f"{DAY}.parquet")
    return store, log, tmp_path


def monitor(store, log) -> WindowMonitor:
    return WindowMonitor(store, log, MonitoringConfig(), POLICY)


def statuses(outcomes) -> dict[str, str]:
    return {o.model: o.verdict.status for o in outcomes}


def test_a_truncated_window_fails_its_model_only_and_stands_until_fixed(fleet):
    store, log, root = fleet
    path = root / INFERENCE / "victim" / f"{DAY}.parquet"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    outcomes = monitor(store, log).evaluate(DAY)
    assert statuses(outcomes) == {"moved": "drifted", "steady": "ok", "victim": "failed"}
    victim = next(o for o in outcomes if o.model == "victim")
    assert list(victim.failures) == ["window"] and "parquet" in victim.failures["window"].lower()
    # a label refresh recomputes performance only: the window's failure still stands
    assert statuses(monitor(store, log).evaluate(DAY, [PERFORMANCE, HEALTH]))["victim"] == "failed"
    path.write_bytes(good)                                   # the fixed file, re-run
    assert statuses(monitor(store, log).evaluate(DAY))["victim"] == "ok"


def test_a_corrupt_stored_reference_fails_its_model_only(fleet):
    store, log, _ = fleet
    with store.engine.begin() as conn:
        good = conn.execute(sa.text("SELECT profile_json FROM profiles WHERE model = 'victim'")).scalar()
        conn.execute(sa.text("UPDATE profiles SET profile_json = '{not json' WHERE model = 'victim'"))
    outcomes = monitor(store, log).evaluate(DAY)
    assert statuses(outcomes) == {"moved": "drifted", "steady": "ok", "victim": "failed"}
    victim = next(o for o in outcomes if o.model == "victim")
    assert "not JSON" in victim.failures["reference"]
    with store.engine.begin() as conn:                       # the reference repaired, re-run: the failure is cleared
        conn.execute(sa.text("UPDATE profiles SET profile_json = :good WHERE model = 'victim'"), {"good": good})
    assert statuses(monitor(store, log).evaluate(DAY))["victim"] == "ok"
    assert store.failures("victim", DAY) == []


def test_an_unknown_stage_is_a_one_line_error(fleet):
    store, log, _ = fleet
    with pytest.raises(ValueError, match="unknown stages: sentiment"):
        monitor(store, log).evaluate(DAY, ["sentiment"])


def test_a_windows_alerts_survive_a_label_refresh_and_are_shown_in_full(fleet):
    """The refresh queues nothing new (the alert was sent), yet model_health still shows what the window raised."""
    from monitoring_assets.health import metadata

    store, log, _ = fleet
    first = monitor(store, log).evaluate(DAY)
    refreshed = monitor(store, log).evaluate(DAY, [PERFORMANCE, HEALTH])
    moved = next(o for o in refreshed if o.model == "moved")
    assert next(o for o in first if o.model == "moved").plans and not any(p.dispatches for p in moved.plans.values())
    assert [a.fingerprint for a in moved.alerts] == ["moved:1:data_drift"]
    shown = metadata(DAY, refreshed)
    assert shown["alerts_raised"].value == 1
    text = shown["alerts"].value
    assert "moved v1: data drift (warning)" in text and "Impacted features:" in text and "- x: " in text
    assert [a.fingerprint for a in store.window_alerts("moved", DAY)] == ["moved:1:data_drift"]


def test_models_are_evaluated_with_one_blas_thread(fleet, monkeypatch):
    """A window's matrix products are small: BLAS threads would only spin (3x the CPU on 2 cores)."""
    from threadpoolctl import threadpool_info

    from watchkeeper.stages import STAGES, Stage

    seen = []
    drift = STAGES["drift"]

    def counting(context, outcome, step):
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        drift.run(context, outcome, step)

    monkeypatch.setitem(STAGES, "drift", Stage(drift.span, drift.needs_window, counting))
    store, log, _ = fleet
    assert statuses(monitor(store, log).evaluate(DAY)) == {"moved": "drifted", "steady": "ok", "victim": "ok"}
    assert seen and set(seen) == {1}
