"""End to end, on the demo built by `watchkeeper demo --headless`: no file under the demo folder holds
rows readable without the key, and a sensitive value planted in a new day reaches nothing."""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from conftest import demo_copy, next_day_environment, replayed_day
from watchkeeper.demo import load_dataset

PLANTED_AGE = 0.0123456789012345       # mid-range for the scaled `age`: only rounding hides it
PLANTED_SEX = 0.0777070707070707       # a third value of the two-valued `sex`: a group of one
PLANTED_EXTREME = 0.987654321098765    # far above any `age`: one person's figure, and a quality example


def _needles(values: list[float], texts: list[str]) -> dict[str, bytes]:
    """How each value would look on disk in clear: its text (repr, 10 and 6 digits), its float64 bytes."""
    needles = {text: text.encode() for text in texts}
    for v in values:
        for shown in (repr(v), f"{v:.10g}", f"{v:.6g}"):
            needles[shown] = shown.encode()
        needles[f"{v} <d"], needles[f"{v} >d"] = struct.pack("<d", v), struct.pack(">d", v)
    return needles


def _found(home: Path, needles: dict[str, bytes], skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file() and not p.is_relative_to(home / "secrets")):
        if path.relative_to(home).as_posix() in skip:
            continue
        data = path.read_bytes()
        found += [f"{path.relative_to(home)}: {name}" for name, needle in needles.items() if needle in data]
    return found


def _readable_rows(path: Path) -> int:
    """Rows of `path` readable as Parquet or CSV by anyone (0 when it is neither)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        pass
    if path.suffix.lower() in (".csv", ".tsv"):
        try:
            return pcsv.read_csv(path).num_rows
        except Exception:
            return 0
    return 0


def test_no_file_under_the_demo_holds_rows_readable_without_the_key(demo):
    home = demo[0]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    plain = [f"{p.relative_to(home)} ({n} rows)" for p in files if (n := _readable_rows(p))]
    assert plain == []
    diabetes = load_dataset("diabetes")          # training rows: in MLflow's artifacts and the reference profile
    training = [float(diabetes[c].iloc[i]) for c in ("bmi", "s5", "age") for i in (0, 17, 101)]
    served = ["diabetes_regressor-20261101-00000", "breast_cancer_classifier-20261107-00003"]   # prediction ids
    assert _found(home, _needles(training, served)) == []


@pytest.fixture(scope="module")
def planted(demo, tmp_path_factory):
    """A copy of the demo fed one more day whose diabetes_regressor rows carry planted sensitive values,
    through the real inference sensor and the runs it requests on the copy's Dagster instance."""
    import dagster as dg

    from sensor_driver import SensorDriver
    from watchkeeper.inference_log import INFERENCE, InferenceLog
    from watchkeeper.security.sealed_files import write_parquet

    home = demo_copy(demo[0], tmp_path_factory.mktemp("planted") / "demo")
    day = "2026-11-15"
    spans = _recorded_spans()
    with pytest.MonkeyPatch.context() as env:
        for name, value in next_day_environment(home).items():
            env.setenv(name, value)
        env.setenv("WATCHKEEPER_LOG_LEVEL", "INFO")             # every evaluation step's log line
        from definitions import defs

        log = InferenceLog(home)
        frames = replayed_day(log, day)
        frames["diabetes_regressor"].loc[0, "age"] = PLANTED_AGE
        frames["diabetes_regressor"].loc[1, "sex"] = PLANTED_SEX
        frames["diabetes_regressor"].loc[2, "age"] = PLANTED_EXTREME
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger().addHandler(handler)
        try:
            with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
                driver = SensorDriver(defs, instance)
                driver.tick("inference_sensor")
                for model, frame in frames.items():
                    write_parquet(frame, log.root / INFERENCE / model / f"{day}.parquet")
                asked = driver.tick("inference_sensor")
                driver.tick("alert_delivery_sensor")
        finally:
            logging.getLogger().removeHandler(handler)
        kept = log.read_window("diabetes_regressor", day)
        planted_in = log.read_predictions("diabetes_regressor", day)
    return home, asked, driver.failed_runs, records, kept, planted_in, spans.get_finished_spans()


def _recorded_spans():
    """An in-memory exporter on this process's tracer provider: the evaluation's traces."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_a_planted_sensitive_value_reaches_nothing(planted, capfd):
    home, asked, failed, records, kept, planted_in, spans = planted
    assert any(r.partition_key == "2026-11-15" for r in asked) and failed == []
    assert planted_in.loc[0, "age"] == PLANTED_AGE and planted_in.loc[1, "sex"] == PLANTED_SEX   # it was served
    assert PLANTED_AGE not in set(kept["age"]) and PLANTED_SEX not in set(kept["sex"])
    assert kept["age"].max() < 0.2
    needles = _needles([PLANTED_AGE, PLANTED_SEX, PLANTED_EXTREME], [])
    # the store (results, outbox, problems), the Dagster instance (event log, runs, compute logs), MLflow, windows;
    # the drop folder's own file is the served data itself (and encrypted)
    assert _found(home, needles, skip=("inference/diabetes_regressor/2026-11-15.parquet",)) == []
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
    rendered = json.dumps([r["payload"] for r in store.outbox().rows()] + [q.result for q in store.quality()]
                          + [d.report for d in store.drift(window="2026-11-15")])
    assert any(s.attributes.get("watchkeeper.model") == "diabetes_regressor" for s in spans)
    logged = ("\n".join(str(r.__dict__) for r in records) + "".join(capfd.readouterr())
              + "\n".join(f"{s.name} {dict(s.attributes)} {[e.attributes for e in s.events]}" for s in spans))
    for name, needle in needles.items():
        if needle.isascii() and needle.decode().replace(".", "").isdigit():
            assert needle.decode() not in rendered and needle.decode() not in logged, name
