"""Encryption at rest: windows, outbox rows, detector state and references are sealed on disk, read
back with the key, fail in one line without it, and stay readable after a key rotation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from test_monitor import DAY, fleet, monitor, statuses   # noqa: F401  (fleet: the evaluation loop's three-model fixture)
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.inference_log import InferenceInputError, InferenceLog
from watchkeeper.security.envelope import EncryptionError, open_envelope, seal
from watchkeeper.security.kms import KMS_DIR_ENV, EnvKms, FileKms, KeyUnavailable
from watchkeeper.security.sealed_files import is_sealed_file
from watchkeeper.store import MonitoringStore

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "PLANTED-4c1f9e-secret"       # a value that must never be on disk in clear


@pytest.fixture
def kms(tmp_path, monkeypatch) -> FileKms:
    """A file KMS configured for this test through the environment, as the demo does."""
    folder = tmp_path / "kms"
    monkeypatch.setenv(KMS_DIR_ENV, str(folder))
    return FileKms.create(folder)


def _window(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"timestamp": pd.Timestamp("2026-11-05", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
                         "prediction_id": [f"{PLANTED}-{i}" for i in range(n)],
                         "x": rng.normal(size=n), "prediction": rng.integers(0, 2, n)})


def _bytes_on_disk(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_an_envelope_is_bound_to_its_purpose_and_detects_tampering():
    kms = EnvKms({"k1": bytes(range(32))}, "k1")
    blob = seal(PLANTED.encode(), "window", kms)
    assert PLANTED.encode() not in blob and b"k1" in blob          # the key id travels with the data
    assert open_envelope(blob, "window", kms) == PLANTED.encode()
    with pytest.raises(EncryptionError, match="state_json cannot be decrypted: .*wrong key or altered data"):
        open_envelope(blob, "store state_json", kms)                # moved to another kind of object
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(EncryptionError, match="damaged or was altered"):
        open_envelope(tampered, "window", kms)
    with pytest.raises(EncryptionError, match="no key is configured"):
        open_envelope(blob, "window", None)


def test_env_kms_reads_the_current_and_previous_keys_and_refuses_a_malformed_one():
    old, new = "aa" * 32, "bb" * 32
    before = EnvKms.from_environ({"WATCHKEEPER_KEK": f"2026a:{old}"})
    blob = seal(b"rows", "window", before)
    rotated = EnvKms.from_environ({"WATCHKEEPER_KEK": f"2026b:{new}", "WATCHKEEPER_KEKS_PREVIOUS": f"2026a:{old}"})
    assert rotated.current_key_id() == "2026b"
    assert open_envelope(blob, "window", rotated) == b"rows"
    with pytest.raises(EncryptionError, match="no key '2026a'"):
        open_envelope(blob, "window", EnvKms.from_environ({"WATCHKEEPER_KEK": f"2026b:{new}"}))
    with pytest.raises(KeyUnavailable, match="64 hex digits") as error:
        EnvKms.from_environ({"WATCHKEEPER_KEK": "2026a:tooshort"})
    assert "tooshort" not in str(error.value)                      # a key is never echoed


def test_a_window_on_disk_is_sealed_reads_back_with_the_key_and_fails_in_one_line_without(kms, tmp_path, monkeypatch):
    log = InferenceLog(tmp_path / "drop")
    path = log.write_window("churn", "2026-11-05", _window())
    assert is_sealed_file(path) and PLANTED.encode() not in path.read_bytes()
    with pytest.raises(Exception):                                  # not a Parquet file to anyone without the key
        pq.read_table(path)
    pd.testing.assert_frame_equal(log.read_window("churn", "2026-11-05"), _window())
    assert list(log.read_window("churn", "2026-11-05", ["x"]).columns) == ["x"]

    monkeypatch.delenv(KMS_DIR_ENV)
    with pytest.raises(InferenceInputError) as error:
        log.read_window("churn", "2026-11-05")
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "no key is configured" in message


def test_windows_stay_readable_after_a_key_rotation(kms, tmp_path):
    log = InferenceLog(tmp_path / "drop")
    first = kms.current_key_id()
    old = log.write_window("churn", "2026-11-05", _window())
    second = FileKms(kms.folder).rotate()
    new = log.write_window("churn", "2026-11-06", _window())
    assert first != second
    assert first.encode() in old.read_bytes() and second.encode() in new.read_bytes()
    for day in ("2026-11-05", "2026-11-06"):
        assert len(log.read_window("churn", day)) == 200
    (kms.folder / f"{first}.kek").unlink()                           # the old key thrown away: old data is lost, clearly
    with pytest.raises(InferenceInputError, match=f"no key '{first}'"):
        log.read_window("churn", "2026-11-05")


def _alert() -> AlertRecord:
    return AlertRecord(fingerprint="churn:1:data_drift", model="churn", version="1", window="2026-11-05",
                       severity="warning", kind="data_drift", title="drift", summary=f"segment {PLANTED}")


def test_outbox_rows_and_detector_state_are_sealed_in_the_database_and_read_back(kms, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    store = MonitoringStore(url)
    store.outbox().enqueue(_alert(), ["slack"])
    store.put_stream("churn", "2026-11-05", "errors", "1", 10, {"detector": PLANTED}, [])
    store.put_profile("churn", "1", "binary", {"features": [], "exact": PLANTED}, {"features": [PLANTED]})
    with sa.create_engine(url).connect() as conn:
        stored = conn.exec_driver_sql("SELECT payload_json FROM outbox UNION ALL SELECT state_json FROM streams "
                                      "UNION ALL SELECT profile_json FROM profiles").scalars().all()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert len(stored) == 3 and all(s.startswith("wke1:") and PLANTED not in s for s in stored)
    assert PLANTED.encode() not in _bytes_on_disk(tmp_path)        # the SQLite file and its WAL
    assert store.outbox().rows()[0]["payload"]["summary"] == f"segment {PLANTED}"
    assert store.stream_state("churn", "errors", "1", before="2026-11-06") == {"detector": PLANTED}

    FileKms(kms.folder).rotate()
    assert store.stream_state("churn", "errors", "1", before="2026-11-06") == {"detector": PLANTED}

    monkeypatch.delenv(KMS_DIR_ENV)
    with pytest.raises(EncryptionError) as error:
        store.stream_state("churn", "errors", "1", before="2026-11-06")
    assert str(error.value) == ("store state_json is encrypted and no key is configured: set WATCHKEEPER_KMS_DIR "
                                "or WATCHKEEPER_KEK (and WATCHKEEPER_KEKS_PREVIOUS for rotated keys)")
    profile = store.latest_profiles()["churn"]                      # that model fails alone, with the reason
    assert profile.error and "no key is configured" in profile.error


def test_a_sender_without_the_key_retries_the_row_instead_of_dropping_it(kms, tmp_path, monkeypatch):
    from watchkeeper.alerting.outbox import PENDING, Outbox, Sender
    from watchkeeper.alerting.record import Delivery

    class Recorder:
        name = "slack"
        sent: list = []

        def send(self, alert):
            self.sent.append(alert)
            return Delivery("slack", "1", "posted")

    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    store.outbox().enqueue(_alert(), ["slack"])
    monkeypatch.delenv(KMS_DIR_ENV)
    Sender(store.outbox(), {"slack": Recorder()}).run_once()
    row = store.outbox().rows()[0]
    assert row["status"] == PENDING and "no key is configured" in row["last_error"]
    monkeypatch.setenv(KMS_DIR_ENV, str(kms.folder))
    a_day_later = Outbox(store.engine, database_clock=lambda: time.time() + 86_400)   # past the retry's backoff
    Sender(a_day_later, {"slack": Recorder()}).run_once()
    assert [a.summary for a in Recorder.sent] == [f"segment {PLANTED}"]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_drift_reads_plain_files_and_sealed_ones_only_with_the_key(kms, tmp_path, monkeypatch):
    from watchkeeper.security.sealed_files import write_parquet

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=300)})
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    write_parquet(pd.DataFrame({"x": rng.normal(size=300)}), tmp_path / "cur.parquet")
    done = _cli("drift", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_current"] == 300

    monkeypatch.delenv(KMS_DIR_ENV)
    done = _cli("drift", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "cur.parquet" in done.stderr and "no key is configured" in done.stderr



def test_a_window_sealed_under_a_lost_key_fails_its_model_only(fleet, tmp_path, monkeypatch):
    from watchkeeper.security.sealed_files import write_parquet

    store, log, root = fleet
    lost = FileKms.create(tmp_path / "lost")
    path = root / "inference" / "victim" / f"{DAY}.parquet"
    write_parquet(pd.read_parquet(path), path, kms=lost)         # sealed under a key this deployment does not hold
    monkeypatch.setenv(KMS_DIR_ENV, str(FileKms.create(tmp_path / "ours").folder))
    outcomes = monitor(store, log).evaluate(DAY)
    assert statuses(outcomes) == {"moved": "drifted", "steady": "ok", "victim": "failed"}
    reason = next(o for o in outcomes if o.model == "victim").failures["window"]
    assert "\n" not in reason and f"no key '{lost.current_key_id()}'" in reason
