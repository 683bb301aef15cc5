"""The monitoring store on SQLite (embedded default) and PostgreSQL (scale profile)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from watchkeeper.store import MonitoringStore, StoredVerdict


@pytest.fixture
def store(store_url):
    store = MonitoringStore(store_url)
    yield store
    store.engine.dispose()


def test_rerunning_a_window_replaces_its_rows(store):
    values = [{"name": "accuracy", "value": 0.9, "lower": 0.85, "upper": 0.95},
              {"name": "f1", "value": 0.8, "lower": 0.7, "upper": 0.9}]
    store.put_metrics("m", "2026-11-01", "1", values, n_labelled=100, n_predictions=120)
    store.put_metrics("m", "2026-11-01", "1", values[:1], n_labelled=110, n_predictions=120)
    store.put_metrics("m", "2026-11-02", "1", values, n_labelled=5, n_predictions=120)
    rows = store.metrics("m", "2026-11-01")
    assert [(r.metric, r.n_labelled) for r in rows] == [("accuracy", 110)]
    assert len(store.metrics("m")) == 3


def test_rows_can_be_bounded_to_a_range_of_windows(store):
    for day in ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"):
        store.put_health("m", day, "1", "ok", [])
    rows = store.verdicts("m", since="2026-11-02", before="2026-11-04")
    assert [r.window for r in rows] == ["2026-11-02", "2026-11-03"]


def test_latest_profile_is_the_newest_version(store):
    store.put_profile("m", "1", "binary", {"n_rows": 1}, {"metrics": {}})
    store.put_profile("m", "2", "binary", {"n_rows": 2}, {"metrics": {}})
    store.put_profile("other", "7", "regression", {"n_rows": 3}, {"metrics": {}})
    latest = store.latest_profiles()
    assert (latest["m"].version, latest["m"].profile) == ("2", {"n_rows": 2})
    assert latest["other"].task == "regression"
    only = store.latest_profiles(lambda model: model == "m")   # a shard's models: only theirs are read
    assert list(only) == ["m"] and (only["m"].version, only["m"].profile) == ("2", {"n_rows": 2})
    assert store.latest_profiles(lambda model: False) == {}


def test_a_failure_stands_until_its_stage_succeeds(store):
    store.put_failure("m", "2026-11-08", "window", "1", "cannot read the file")
    store.put_failure("m", "2026-11-08", "window", "1", "still cannot read it")
    store.put_failure("m", "2026-11-08", "drift", "1", "plugin raised")
    assert {(f.stage, f.reason) for f in store.failures("m", "2026-11-08")} == {
        ("window", "still cannot read it"), ("drift", "plugin raised")}
    store.clear_failure("m", "2026-11-08", "window")
    assert [f.stage for f in store.failures("m")] == ["drift"]


def test_a_transaction_commits_all_its_writes_or_none(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.put_health("m", "2026-11-08", "1", "ok", [], tx=tx)
        store.put_failure("m", "2026-11-08", "drift", "1", "x", tx=tx)
        raise RuntimeError("killed")
    assert store.verdicts("m") == [] and store.failures("m") == []
    with store.transaction() as tx:
        store.put_health("m", "2026-11-08", "1", "ok", [], tx=tx)
    assert [r.status for r in store.verdicts("m")] == ["ok"]


def test_json_columns_round_trip(store):
    reasons = [{"signal": "performance", "detail": "accuracy 0.6", "value": 0.6}]
    store.put_health("m", "2026-11-08", "1", "degraded", reasons)
    assert store.verdicts("m", "2026-11-08") == [StoredVerdict("m", "2026-11-08", "1", "degraded", reasons)]


def test_every_reader_filters_by_model_and_window_alike(store):
    """Each kind of result is read back as its record, by the same filters, oldest window first."""
    for day in ("2026-11-02", "2026-11-01"):
        store.put_window("m", day, "1", 500, ["late rows"], f"/w/{day}.parquet")
        store.put_quality("m", day, "1", "passed", {"n_rows": 500, "problems": []})
        store.put_drift("m", day, "1", {"dataset_drift": True, "n_current": 500, "drifted_features": ["x"]})
        store.put_segments("m", day, "1", [{"segment": "sex=1", "metric": "mae", "value": 2.0}])
        store.put_stream("m", day, "errors", "1", 40, {"n_seen": 40}, [{"index": 3}])
    store.put_window("other", "2026-11-01", "7", 10, [], None)
    assert [(w.model, w.window, w.n_rows, w.problems) for w in store.windows(window="2026-11-01")] == [
        ("m", "2026-11-01", 500, ["late rows"]), ("other", "2026-11-01", 10, [])]
    assert [q.window for q in store.quality("m")] == ["2026-11-01", "2026-11-02"]
    [drift] = store.drift("m", since="2026-11-02")
    assert (drift.dataset_drift, drift.n_current, drift.report["drifted_features"]) == (True, 500, ["x"])
    assert store.segments("m", before="2026-11-02")[0].segments[0]["segment"] == "sex=1"
    [stream] = store.streams("m", "2026-11-02")
    assert (stream.day, stream.state, stream.alarms) == ("2026-11-02", {"n_seen": 40}, [{"index": 3}])
    assert store.windows("nobody") == []


def test_postgres_schema_is_real_postgres(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with store.engine.connect() as conn:
        tables = set(conn.execute(sa.text("select tablename from pg_tables where schemaname='public'")).scalars())
    assert {"profiles", "windows", "drift_reports", "metrics", "health", "problems", "failures", "outbox",
            "alembic_version"} <= tables


def test_a_sqlite_file_is_switched_to_write_ahead_logging(tmp_path):
    MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    with sa.create_engine(f"sqlite:///{tmp_path / 'monitoring.db'}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
