"""The audit trail: hash-chained, append-only, verified by `watchkeeper audit verify`, on SQLite and
PostgreSQL. Every way of tampering with a row (edit, delete, insert, reorder) is caught and the
first bad entry named; two processes appending at once never fork the chain; on PostgreSQL the
application role can only add rows."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from cli.main import main
from conftest import ROOT
from watchkeeper.security.audit import AuditEntry, seal
from watchkeeper.store import MonitoringStore

N = 6


@pytest.fixture
def trail(store_url) -> MonitoringStore:
    """A store with N audit entries."""
    store = MonitoringStore(store_url)
    for i in range(1, N + 1):
        store.audit("config.changed", f"deploy/monitoring.yaml#{i}", actor="alice", run_id=f"run{i}",
                    partition="2026-11-10", details={"digest": f"d{i}", "n": i})
    return store


def tamper(store: MonitoringStore, *statements: str) -> None:
    """Run `statements` as the tables' owner would, with the append-only triggers out of the way."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        for statement in statements:
            conn.exec_driver_sql(statement)


def verify(store: MonitoringStore, capsys) -> tuple[int, str]:
    code = main(["audit", "verify", "--store-url", store.engine.url.render_as_string(hide_password=False)])
    return code, capsys.readouterr().out


def test_an_intact_trail_verifies_and_names_its_head(trail, capsys):
    code, out = verify(trail, capsys)
    entries = list(trail.audit_entries())
    assert code == 0 and f"{N} entries" in out and entries[-1].hash in out
    assert [e.seq for e in entries] == list(range(1, N + 1))
    assert entries[0].details == {"digest": "d1", "n": 1} and entries[2].run_id == "run3"
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(entries, entries[1:]))


def forged(store: MonitoringStore, seq: int) -> str:
    """SQL inserting a well-formed entry (correct own hash, linked to entry seq-1) as entry `seq`."""
    prev = next(e for e in store.audit_entries() if e.seq == seq - 1)
    entry = seal(AuditEntry(seq, prev.at, "mallory", "config.changed", "forged", None, None, {}), prev.hash)
    return (f"INSERT INTO audit_log (seq, at, actor, action, subject, details_json, prev_hash, hash) VALUES "
            f"({seq}, '{entry.at}', 'mallory', 'config.changed', 'forged', '{{}}', '{entry.prev_hash}', '{entry.hash}')")


@pytest.mark.parametrize("how, first_bad", [
    ("edit", 3), ("edit_details", 4), ("delete", 4), ("insert", 5), ("reorder", 2), ("append_unlinked", N + 1)])
def test_every_kind_of_tampering_is_caught_at_the_first_bad_entry(trail, capsys, how, first_bad):
    if how == "edit":
        tamper(trail, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    elif how == "edit_details":
        tamper(trail, """UPDATE audit_log SET details_json = '{"digest": "d4", "n": 5}' WHERE seq = 4""")
    elif how == "delete":
        tamper(trail, "DELETE FROM audit_log WHERE seq = 4")
    elif how == "insert":
        # A forged entry 4, well formed and linked to entry 3 (anyone can compute an unkeyed hash), with
        # the old entries 4.. renumbered after it: the chain breaks at the entry after the forgery.
        forgery = forged(trail, 4)
        tamper(trail, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4",
               "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100", forgery)
    elif how == "reorder":   # entries 2 and 3 swap places
        tamper(trail, "UPDATE audit_log SET seq = 100 WHERE seq = 2", "UPDATE audit_log SET seq = 2 WHERE seq = 3",
               "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    else:
        tamper(trail, f"INSERT INTO audit_log (seq, at, actor, action, subject, details_json, prev_hash, hash) "
                      f"VALUES ({N + 1}, 'x', 'mallory', 'config.changed', 'x', '{{}}', '{'0' * 64}', '{'0' * 64}')")
    code, out = verify(trail, capsys)
    assert code == 1, out
    assert f"BROKEN at entry {first_bad}:" in out


def test_the_trail_refuses_updates_and_deletes_even_from_the_owner(trail):
    for statement in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with trail.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert len(list(trail.audit_entries())) == N


APPEND = """
import sys
from watchkeeper.store import MonitoringStore
store = MonitoringStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    if i % 2:   # in a transaction that wrote before it
        with store.transaction() as tx:
            store.put_health("m", f"w{sys.argv[2]}{i}", "1", "ok", [], tx=tx)
            store.audit("verdict.recorded", "m", actor=sys.argv[2], details={"i": i}, tx=tx)
    else:       # on its own
        store.audit("config.changed", "c", actor=sys.argv[2], details={"i": i})
"""


def test_two_processes_appending_at_once_never_fork_the_chain(store_url, capsys):
    store = MonitoringStore(store_url)   # migrated once, before both writers start
    each = 60
    writers = [subprocess.Popen([sys.executable, "-c", APPEND, store_url, name, str(each)], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()
    entries = list(store.audit_entries())
    assert len(entries) == 2 * each and {e.actor for e in entries} == {"a", "b"}
    assert verify(store, capsys)[0] == 0


def test_a_store_without_a_trail_or_a_folder_without_a_store_is_a_one_line_error(tmp_path, capsys):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE profiles (model TEXT)")
    assert main(["audit", "verify", "--store-url", f"sqlite:///{tmp_path / 'old.db'}"]) == 2
    assert "no audit trail" in capsys.readouterr().err
    assert main(["audit", "verify", "--dir", str(tmp_path)]) == 2
    assert "no monitoring.db" in capsys.readouterr().err


@pytest.mark.service
def test_the_application_role_can_only_insert_audit_rows(postgres_url, capsys):
    role = f"wk_app_{uuid.uuid4().hex[:8]}"
    owner = MonitoringStore(postgres_url)
    owner.audit("config.changed", "before the role")
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        assert main(["db", "grant", "--role", role, "--store-url", postgres_url]) == 0
        app = MonitoringStore(postgres_url.replace("postgres@", f"{role}@"))
        app.put_health("churn", "2026-11-10", "3", "ok", [])                     # results: read and write
        app.audit("verdict.recorded", "churn", details={"status": "ok"})          # audit: insert
        assert [e.subject for e in app.audit_entries()] == ["before the role", "churn"]
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log",
                          "ALTER TABLE audit_log DISABLE TRIGGER USER", "UPDATE alembic_version SET version_num = 'x'"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied|must be owner"):
                with app.engine.begin() as conn:
                    conn.exec_driver_sql(statement)
        app.engine.dispose()
        assert verify(owner, capsys)[0] == 0
    finally:
        owner.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


def test_grant_on_sqlite_is_a_one_line_error(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    MonitoringStore(url)
    assert main(["db", "grant", "--role", "app", "--store-url", url]) == 2
    assert "PostgreSQL feature" in capsys.readouterr().err


def test_details_are_canonical_json(trail):
    entry = next(trail.audit_entries())
    with trail.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT details_json FROM audit_log WHERE seq = 1")).scalar()
    assert json.loads(stored) == entry.details


def test_a_configuration_is_recorded_once_per_change(tmp_path):
    from watchkeeper.security.audit import CONFIG_CHANGED, Actor, record_configuration

    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    thresholds = tmp_path / "monitoring.yaml"
    thresholds.write_text("defaults: {}\n")
    files = {"monitoring": thresholds, "alerting": ROOT / "deploy" / "alerting.demo.yaml", "residency": None}
    first = record_configuration(store, files, Actor("dagster:evaluate_window", "run-1"))
    assert record_configuration(store, files) is None                  # unchanged: nothing recorded
    thresholds.write_text("defaults: {health: {min_labelled: 50}}\n")
    changed = record_configuration(store, files, Actor("dagster:evaluate_window", "run-2"))
    entries = list(store.audit_entries(CONFIG_CHANGED))
    assert [e.run_id for e in entries] == ["run-1", "run-2"]
    assert first.details["digest"] != changed.details["digest"]
    assert first.details["files"]["alerting"] == changed.details["files"]["alerting"]
    assert "min_labelled" not in json.dumps(changed.details)            # digests, never contents


@pytest.mark.slow
def test_the_demo_leaves_an_intact_trail_of_every_verdict(demo, capsys):
    from watchkeeper.security.audit import CONFIG_CHANGED, VERDICT

    home, _ = demo
    assert main(["audit", "verify", "--dir", str(home)]) == 0
    assert "audit trail intact" in capsys.readouterr().out
    store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
    decided = {(e.subject, e.partition) for e in store.audit_entries(VERDICT)}
    assert decided == {(v.model, v.window) for v in store.verdicts()}
    assert all(e.run_id and e.actor.startswith("dagster:") for e in store.audit_entries(VERDICT))
    assert len(list(store.audit_entries(CONFIG_CHANGED))) == 1     # the configuration did not change


def test_logins_and_role_changes_from_the_authenticating_front_are_chained(tmp_path):
    from watchkeeper.security.audit import LOGIN, LOGIN_FAILED, ROLE_CHANGED, record_login, record_role_change

    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    record_login(store, "alice@acme.ae", ok=True, details={"issuer": "https://idp.acme.ae", "roles": ["viewer"]})
    record_login(store, "mallory", ok=False, details={"reason": "bad signature"})
    record_role_change(store, "alice@acme.ae", ["operator", "viewer"], actor="admin@acme.ae", previous=["viewer"])
    entries = list(store.audit_entries())
    assert [(e.action, e.subject, e.actor) for e in entries] == [
        (LOGIN, "alice@acme.ae", "alice@acme.ae"), (LOGIN_FAILED, "mallory", "mallory"),
        (ROLE_CHANGED, "alice@acme.ae", "admin@acme.ae")]
    assert entries[2].details == {"roles": ["operator", "viewer"], "previous": ["viewer"]}
    assert store.verify_audit() == (3, None, entries[-1].hash)
