"""Schema migrations: a store made by the first release, with data in it, upgrades with
`watchkeeper db upgrade` and keeps every row, on SQLite and on PostgreSQL.

tests/fixtures/store_release_2026_11.db was written once by the first release's own code
(git b22109d: its MonitoringStore, Outbox.notify, acknowledge and pause_channel), so it is what
a user's store from that release looks like, not what this release thinks it looked like.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli.main import main
from watchkeeper.store import MonitoringStore
from watchkeeper.store.migrate import RELEASE_0001, MigrationError, head, upgrade
from watchkeeper.store.schema import metadata

RELEASE = Path(__file__).parent / "fixtures" / "store_release_2026_11.db"
KEPT = ["profiles", "windows", "drift_reports", "metrics", "segment_metrics", "quality", "health", "streams",
        "outbox", "outbox_channel_pauses"]


def rows(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        found = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()   # noqa: S608 (our names)
    return sorted((_plain(dict(r)) for r in found), key=repr)


def _plain(row: dict) -> dict:
    """Rows compared across backends: datetimes as UTC ISO text, booleans as booleans."""
    return {k: v.replace(tzinfo=None).isoformat(sep=" ") if hasattr(v, "isoformat") else v for k, v in row.items()}


def columns(engine: sa.Engine) -> dict[str, dict[str, tuple]]:
    inspector = sa.inspect(engine)
    return {t: {c["name"]: (type(c["type"]).__name__, c["nullable"]) for c in inspector.get_columns(t)}
            for t in inspector.get_table_names() if t != "alembic_version"}


def release_copy(url: str) -> sa.Engine:
    """The release's store on any backend: its schema (revision 0001), then its rows, unstamped."""
    from alembic import command

    from watchkeeper.store.migrate import _config

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), RELEASE_0001)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    source = sa.create_engine(f"sqlite:///{RELEASE}")
    released = sa.MetaData()
    released.reflect(engine)
    with engine.begin() as conn:
        for table in ["profiles", "windows", "drift_reports", "metrics", "segment_metrics", "quality", "health",
                      "streams", "alerts", "alert_problems", "outbox", "outbox_channel_pauses"]:
            data = rows(source, table)
            if data:
                conn.execute(released.tables[table].insert(), [_typed(released.tables[table], r) for r in data])
    return engine


def _typed(table: sa.Table, row: dict) -> dict:
    from datetime import datetime

    return {k: datetime.fromisoformat(v) if isinstance(table.c[k].type, sa.DateTime) and v else v
            for k, v in row.items()}


def test_revision_0001_is_the_released_schema(tmp_path):
    built = release_copy(f"sqlite:///{tmp_path / 'built.db'}")
    assert columns(built) == columns(sa.create_engine(f"sqlite:///{RELEASE}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def released(request, tmp_path) -> tuple[str, sa.Engine]:
    if request.param == "sqlite":
        copy = tmp_path / "monitoring.db"
        shutil.copy(RELEASE, copy)
        url = f"sqlite:///{copy}"
        return url, sa.create_engine(url)
    url = request.getfixturevalue("postgres_url")
    return url, release_copy(url)


def test_a_released_store_upgrades_and_keeps_every_row(released, capsys):
    url, engine = released
    before = {table: rows(engine, table) for table in KEPT + ["alerts", "alert_problems"]}
    assert main(["db", "upgrade", "--store-url", url]) == 0
    assert capsys.readouterr().out.strip() == f"store schema: {RELEASE_0001} -> {head()}"
    for table in KEPT:
        kept = rows(engine, table)
        if table == "streams":    # 0005 says who fed each detector day: every released day was the daily evaluation
            assert {r.pop("source") for r in kept} == {"daily"}
        if table == "outbox":     # 0004 adds what each row tells the channel; the release only raised alerts
            assert {r.pop("event") for r in kept} == {"raised"}
        assert kept == before[table], table
    problems = {r["fingerprint"]: r for r in rows(engine, "problems")}
    assert set(problems) == {r["fingerprint"] for r in before["alerts"] + before["alert_problems"]}
    assert problems["churn:3:data_drift"]["occurrence"] == 2 and problems["churn:3:data_drift"]["state"] == "open"
    assert problems["churn:3:performance"]["state"] == "acknowledged"
    assert problems["churn:3:performance"]["first_window"] == "2026-11-09"
    assert (problems["churn:2:data_drift"]["state"], problems["churn:2:data_drift"]["last_window"]) == ("open", "2026-11-01")
    assert not {"alerts", "alert_problems"} & set(sa.inspect(engine).get_table_names())
    assert main(["db", "upgrade", "--store-url", url]) == 0
    assert capsys.readouterr().out.strip() == f"store schema: {head()} (current)"


def test_opening_a_released_store_migrates_it_and_its_problems_are_readable(tmp_path):
    from watchkeeper.problems import ProblemLog

    copy = tmp_path / "monitoring.db"
    shutil.copy(RELEASE, copy)
    log = ProblemLog(MonitoringStore(f"sqlite:///{copy}"))
    assert {(p.fingerprint, p.state) for p in log.problems("churn")} == {
        ("churn:3:data_drift", "open"), ("churn:3:performance", "acknowledged"), ("churn:2:data_drift", "open")}


def test_the_newest_revision_matches_the_code(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_dedupe_index_of_0006_carries_over_to_0007_and_back(store_url):
    """Revision 0007 turns `ingested` (one hex SHA-256 per id) into `ingest_digests` (a batch's digests
    in one row): after the upgrade every id stored before is still a duplicate, and the downgrade
    gives back the same rows, on SQLite and on PostgreSQL."""
    import hashlib

    from alembic import command

    from watchkeeper.store.ingest_rows import IngestRows
    from watchkeeper.store.migrate import _config

    engine = sa.create_engine(store_url)
    old = [{"model": "churn", "kind": kind, "prediction_id": hashlib.sha256(f"p{i}".encode()).hexdigest()}
           for kind in ("inference", "labels") for i in range(5)]
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0006_ingested_without_rowid")
        conn.execute(sa.text("INSERT INTO ingested VALUES (:model, :kind, :prediction_id)"), old)
        command.upgrade(_config(conn), "0007_ingest_digests")
    index = IngestRows(engine)
    with engine.begin() as conn:
        assert index.claim(conn, "churn", "inference", ["p0", "p4", "p5"]).tolist() == [False, False, True]
        assert index.stored_among(conn, "churn", "labels", ["p3", "p9"]) == ["p3"]
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0006_ingested_without_rowid")
    added = {"model": "churn", "kind": "inference", "prediction_id": hashlib.sha256(b"p5").hexdigest()}
    assert rows(engine, "ingested") == sorted([*old, added], key=repr)


def test_a_store_newer_than_the_code_is_refused(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'future.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(MigrationError, match="revision 9999, newer than this Watchkeeper"):
        MonitoringStore(engine)
    assert main(["db", "upgrade", "--store-url", str(engine.url)]) == 2


def test_the_releases_pickled_detectors_are_cleared_not_left_to_fail_every_window(released):
    """The first release pickled the stream detector (unsigned) and the PCA detector; this release
    refuses both. After the upgrade a stream resumes with a fresh detector at its element count and
    a reference loads without its joint test (until it is profiled again)."""
    import base64
    import json
    import pickle

    from watchkeeper.concept import StreamState, resume
    url, engine = released
    legacy = base64.b64encode(pickle.dumps({"not": "trusted"})).decode()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE streams SET state_json = :s"),
                     {"s": json.dumps({"detector": "auto", "state": legacy, "n_seen": 400})})
        reference = json.loads(conn.execute(sa.text("SELECT reference_json FROM profiles WHERE model = 'churn' "
                                                    "AND version = '3'")).scalar_one())
        conn.execute(sa.text("UPDATE profiles SET reference_json = :r WHERE model = 'churn' AND version = '3'"),
                     {"r": json.dumps({**reference, "pca_detector": legacy})})
    assert main(["db", "upgrade", "--store-url", url]) == 0
    store = MonitoringStore(url)
    state = StreamState.from_dict(store.stream_state("churn", "errors", "3", "2026-11-30"))
    assert state.state == b""
    new_state, _ = resume(state, [0, 1, 0, 0])
    assert new_state.n_seen == 404 and new_state.restore() is not None
    assert store.latest_profiles()["churn"].reference["pca_detector"] is None   # read as "no joint test"
