"""Privacy by default: sensitive columns masked to aggregates, retention per class of data, erasure."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from watchkeeper.alerting.record import AlertRecord
from watchkeeper.config import ConfigError, load_config
from watchkeeper.inference_log import InferenceLog
from watchkeeper.privacy.erasure import ErasureError, erase_model, erase_subject, on_erasure
from watchkeeper.privacy.retention import RetentionPolicy, apply_retention
from watchkeeper.privacy.sensitive import SUPPRESSED, SensitiveColumns
from watchkeeper.quality import QualitySuite
from watchkeeper.reference import build_reference
from watchkeeper.security.kms import KMS_DIR_ENV, FileKms
from watchkeeper.security.sealed_files import is_sealed_file, write_parquet
from watchkeeper.store import MonitoringStore

ROOT = Path(__file__).resolve().parent.parent
PLANTED_TEXT = "Planted-Rare-Nationality"
PLANTED_NUMBER = 987654.321


def _people(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(50_000, 8_000, n), "nationality": rng.choice(["AE", "IN", "PK"], n),
                          "x": rng.normal(size=n)})
    frame.loc[7, "nationality"] = PLANTED_TEXT            # one person: a group of one
    frame.loc[9, "income"] = PLANTED_NUMBER               # one person's extreme figure
    return frame


def test_masking_suppresses_small_groups_and_keeps_no_individual_figure():
    masked = SensitiveColumns(frozenset({"income", "nationality"}), min_count=10).mask(_people())
    assert PLANTED_TEXT not in set(masked["nationality"]) and (masked["nationality"] == SUPPRESSED).sum() == 1
    assert masked["income"].max() < 100_000                         # clipped to the 10th largest
    assert set(np.round(masked["income"], -3)) == set(masked["income"])   # two significant digits
    assert masked["x"].equals(_people()["x"])                       # other columns untouched


def test_a_reference_of_sensitive_columns_keeps_only_aggregates():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    train = _people()
    train["target"] = train["x"] * 2
    # the model reads x only; the sensitive columns are monitored as inputs all the same
    model = make_pipeline(ColumnTransformer([("x", "passthrough", ["x"])]), LinearRegression())
    model.fit(train.drop(columns="target"), train["target"])
    sensitive = SensitiveColumns(frozenset({"income", "nationality"}), 10)
    reference = build_reference("m", "1", "regression", train, train.copy(), model, sensitive)
    stored = json.dumps(reference.to_stored())
    assert PLANTED_TEXT not in stored and "987654" not in stored
    assert reference.profile.features["income"].exact_values is None
    assert reference.profile.features["x"].exact_values is not None  # not sensitive: the exact test stays


def test_quality_names_no_example_value_of_a_sensitive_column():
    from watchkeeper.profile import fit_profile

    reference = fit_profile(_people().drop(index=[7, 9]))
    window = _people(100, seed=1)
    window.loc[:30, "nationality"] = PLANTED_TEXT
    shown = QualitySuite(hidden={"nationality"}).fit(reference).validate(window).to_dict()
    plain = QualitySuite().fit(reference).validate(window).to_dict()
    assert PLANTED_TEXT in json.dumps(plain)                        # what would leak without the flag
    assert PLANTED_TEXT not in json.dumps(shown) and "nationality" in json.dumps(shown)


def test_privacy_and_retention_config_are_checked(tmp_path):
    path = tmp_path / "monitoring.yaml"
    path.write_text("models:\n  m:\n    privacy: {sensitive: [income], min_count: 5, subject_column: customer_id}\n"
                    "retention: {rows_days: 30, alerts_days: null}\n")
    config = load_config(path)
    assert config.for_model("m").privacy.sensitive == SensitiveColumns(frozenset({"income"}), 5)
    assert config.for_model("m").privacy.subject_column == "customer_id"
    assert config.retention == RetentionPolicy(rows_days=30, aggregates_days=730, alerts_days=None)
    for bad, message in (("models: {m: {privacy: {min_count: 1}}}", "privacy.min_count: a group of fewer than 2"),
                         ("models: {m: {privacy: {sensitive: income}}}", "privacy.sensitive: expected a list"),
                         ("retention: {rows_days: 0}", "retention.rows_days: keep data at least 1 day"),
                         ("retention: {rows: 3}", "retention: unknown keys rows")):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def _alert(model: str) -> AlertRecord:
    return AlertRecord(fingerprint=f"{model}:1:data_drift", model=model, version="1", window="2026-01-05",
                       severity="warning", kind="data_drift", title="t", summary="s")


def _drop_folder(root: Path, days: list[str]) -> None:
    for model in ("churn", "fraud"):
        for day in days:
            frame = pd.DataFrame({"prediction_id": [f"{model}-{day}-{i}" for i in range(4)],
                                  "customer_id": ["c1", "c2", "c3", "c1"], "prediction": [0, 1, 0, 1]})
            write_parquet(frame, root / "inference" / model / f"{day}.parquet")
            write_parquet(frame, root / "windows" / model / f"{day}.parquet")
            write_parquet(frame[["prediction_id"]].assign(label=1), root / "labels" / model / f"{day}.parquet")


@pytest.fixture
def kms(tmp_path, monkeypatch) -> FileKms:
    monkeypatch.setenv(KMS_DIR_ENV, str(tmp_path / "kms"))
    return FileKms.create(tmp_path / "kms")


def test_retention_deletes_each_class_of_data_past_its_days(tmp_path, kms):
    root, store = tmp_path / "drop", MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    _drop_folder(root, ["2026-01-05", "2026-03-20"])
    for day in ("2024-01-05", "2026-03-20"):
        store.put_health("churn", day, "1", "ok", [])
    store.outbox().enqueue(_alert("churn"), ["slack"])
    with store.engine.begin() as conn:      # delivered long ago
        conn.exec_driver_sql("UPDATE outbox SET status = 'delivered', created_at = '2025-01-01 00:00:00'")

    result = apply_retention(root, store, RetentionPolicy(rows_days=30, aggregates_days=365, alerts_days=90),
                             date(2026, 4, 1))
    assert sorted(result.files) == sorted(f"{s}/{m}/2026-01-05.parquet" for s in ("inference", "labels", "windows")
                                          for m in ("churn", "fraud"))
    assert all(p.stem == "2026-03-20" for p in root.rglob("*.parquet"))
    assert [v.window for v in store.verdicts()] == ["2026-03-20"] and result.rows["health"] == 1
    assert store.outbox().rows() == [] and result.rows["outbox"] == 1


def test_retention_drops_the_stream_dedupe_index_of_events_past_the_rows_days(tmp_path):
    """Consumers hold the dedupe index in memory: retention keeps it to the ids of retained rows."""
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    with store.engine.begin() as conn:
        store.ingest_rows.claim(conn, "churn", "inference", ["old-1", "old-2"])
        conn.exec_driver_sql("UPDATE ingest_digests SET committed_at = '2026-01-05 00:00:00'")
        store.ingest_rows.claim(conn, "churn", "inference", ["new-1"])

    result = apply_retention(tmp_path / "drop", store, RetentionPolicy(rows_days=30), date(2026, 4, 1))
    assert result.rows["ingest_digests"] == 1 and store.ingest_rows.stored("churn", "inference") == 1
    with store.engine.begin() as conn:      # a consumer started after retention: only the retained id is known
        assert list(store.ingest_rows.claim(conn, "churn", "inference", ["old-1", "new-1"])) == [True, False]


def test_erasing_a_model_deletes_its_files_and_rows_and_tells_the_listeners(tmp_path, kms):
    root, store = tmp_path / "drop", MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    _drop_folder(root, ["2026-03-20"])
    for model in ("churn", "fraud"):
        store.put_health(model, "2026-03-20", "1", "drifted", [])
        store.put_profile(model, "1", "binary", {"features": []}, {"features": []})
    events = []
    on_erasure(events.append)
    with store.engine.begin() as conn:      # an open problem of churn, and its outbox row
        conn.execute(sa.text("INSERT INTO problems (fingerprint, model, version, kind, state, first_window, "
                             "last_window, occurrence, opened_at, payload_json) VALUES ('churn:1:data_drift', "
                             "'churn', '1', 'data_drift', 'open', '2026-03-20', '2026-03-20', 1, :at, '{}')"),
                     {"at": datetime.now(timezone.utc)})
    store.outbox().enqueue(_alert("churn"), ["slack"])
    store.outbox().enqueue(_alert("fraud"), ["slack"])

    event = erase_model(root, store, "churn")
    assert not any((root / s / "churn").exists() for s in ("inference", "labels", "windows"))
    assert (root / "inference" / "fraud").exists()
    assert {v.model for v in store.verdicts()} == {"fraud"} and set(store.latest_profiles()) == {"fraud"}
    assert [r["fingerprint"] for r in store.outbox().rows()] == ["fraud:1:data_drift"]
    assert event.files_deleted == 3 and event.tables["outbox"] == 1 and event.tables["problems"] == 1
    assert events[-1] is event


def test_erasing_a_subject_rewrites_its_files_still_encrypted_and_logs_no_subject(tmp_path, kms, caplog):
    root = tmp_path / "drop"
    _drop_folder(root, ["2026-03-20", "2026-03-21"])
    with caplog.at_level(logging.INFO, logger="watchkeeper.privacy"):
        event = erase_subject(root, "churn", "c1", "customer_id")
    log = InferenceLog(root)
    for day in ("2026-03-20", "2026-03-21"):
        kept = log.read_predictions("churn", day)
        assert list(kept["customer_id"]) == ["c2", "c3"] and is_sealed_file(root / "inference" / "churn" / f"{day}.parquet")
        assert len(log.read_window("churn", day)) == 2
        assert len(log.read_arrivals("churn", day)) == 2            # their labels went with them
        assert len(log.read_predictions("fraud", day)) == 4          # another model: untouched
    assert event.rows_deleted == 2 * (2 + 2 + 2) and event.subject_digest and "c1" not in json.dumps(event.__dict__)
    assert caplog.records and all("'c1'" not in str(r.__dict__) for r in caplog.records)
    with pytest.raises(ErasureError, match="no subject column is configured"):
        erase_subject(root, "churn", "c2", None)


def test_erase_command_works_on_a_folder_and_refuses_a_subject_without_its_column(tmp_path, kms):
    root = tmp_path / "drop"
    _drop_folder(root, ["2026-03-20"])
    MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}").put_health("churn", "2026-03-20", "1", "ok", [])
    common = ["--store-url", f"sqlite:///{tmp_path / 'monitoring.db'}", "--data-dir", str(root)]
    env = {**os.environ, "WATCHKEEPER_ACTOR": "dpo@acme.ae"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "cli.main", *a], cwd=ROOT, capture_output=True,
                                    text=True, timeout=120, env=env)
    refused = run("erase", "--model", "churn", "--subject", "c1", *common)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "watchkeeper erase: error: churn: no subject column is configured (privacy.subject_column in the "
        "monitoring config), so rows cannot be told apart by subject"]
    done = run("erase", "--model", "churn", *common)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tables"]["health"] == 1 and not (root / "inference" / "churn").exists()
    verified = run("audit", "verify", "--store-url", common[1])      # the erasure is in the hash chain
    assert verified.returncode == 0 and "intact: 1 entries" in verified.stdout, verified.stdout + verified.stderr
    [entry] = MonitoringStore(common[1]).audit_entries("data.erased")
    assert (entry.actor, entry.subject, entry.details["tables"]["health"], entry.details["files_deleted"]) == \
        ("dpo@acme.ae", "churn", 1, 3)


def test_retention_command_applies_the_configured_days(tmp_path, kms):
    root = tmp_path / "drop"
    _drop_folder(root, ["2026-01-05", "2026-03-20"])
    MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    (tmp_path / "monitoring.yaml").write_text("retention: {rows_days: 30}\n")
    done = subprocess.run([sys.executable, "-m", "cli.main", "retention", "--store-url",
                           f"sqlite:///{tmp_path / 'monitoring.db'}", "--data-dir", str(root),
                           "--monitoring", str(tmp_path / "monitoring.yaml"), "--today", "2026-04-01"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["files"]) == 6
    assert sorted({p.stem for p in root.rglob("*.parquet")}) == ["2026-03-20"]


@pytest.mark.parametrize("argv, message", [
    (["erase", "--model", "churn", "--dir", "/no/such/folder"], "--dir"),
    (["retention", "--today", "2026-13-01"], "--today: expected a day as YYYY-MM-DD"),
    (["erase", "--model", "churn"], "say where the data is: --dir DEMO_DIR, or --store-url and --data-dir"),
    (["erase", "--model", " "], "--model"),
])
def test_bad_privacy_arguments_are_one_line(argv, message, capsys, monkeypatch):
    from cli.main import main

    for name in ("WATCHKEEPER_STORE_URL", "WATCHKEEPER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"watchkeeper {argv[0]}: error: ") and message in err
