"""Shared fixtures: the demo built once per session through the real `watchkeeper` command, a copy of
it fed one broken day, and one Dagster webserver serving that copy to the UI tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
WATCHKEEPER = [sys.executable, "-m", "cli.main"]

# Stored detector state is signed (watchkeeper.security.signing); tests that do not build a demo
# folder (which makes its own key) sign with this one. Subprocesses inherit it.
os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", "test-signing-key-" + "0" * 32)


POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL database with a random name, dropped after the test: tests that run
    at the same time (or a previous run that died) never share tables."""
    import uuid

    import sqlalchemy as sa

    require_service("PostgreSQL", 5432)
    name = f"wk_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The monitoring store's URL on each backend: the embedded SQLite file, and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitoring.db'}"
    return request.getfixturevalue("postgres_url")


def service_available(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip with a reason on a laptop without the server; CI (CI=true) must have it, so fail there."""
    if service_available(port):
        return
    message = f"{name} is not listening on 127.0.0.1:{port}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it; see .ci/run)")
    pytest.skip(message)


# The build takes minutes; on a machine shared with other builds (load 15-20 on 2 cores) it took
# about 20, before and after the replay moved to the daemon path: raise it there, e.g. 2400.
DEMO_TIMEOUT_SECONDS = float(os.environ.get("WATCHKEEPER_DEMO_TIMEOUT", "600"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """(demo folder, JSON summary) of `watchkeeper demo --headless --format json`. With
    WATCHKEEPER_TEST_DEMO=DIR (a demo built by this code, its summary in DIR.json) a copy of it is
    used instead of a new build: for iterating on one test, never in CI."""
    # The windows are read once per process, when the code location is first imported: read them
    # now, before a test sets a demo's environment (its windows end at the demo's last day), so that
    # what runs in this process accepts any day a test feeds. Served code locations read the demo's
    # own range (tests/test_demo_history.py, tests/test_browser.py).
    import monitoring_assets.partitions  # noqa: F401

    home = tmp_path_factory.mktemp("demo")
    built = os.environ.get("WATCHKEEPER_TEST_DEMO")
    if built:
        shutil.copytree(built, home, dirs_exist_ok=True)
        return home, json.loads(Path(f"{built}.json").read_text())
    done = subprocess.run([*WATCHKEEPER, "demo", "--headless", "--format", "json", "--dir", str(home)],
                          cwd=ROOT, capture_output=True, text=True, timeout=DEMO_TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    return home, json.loads(done.stdout)


# The broken day: one more day after the demo, whose diabetes_regressor window loses a
# column, gets strings in a numeric column and 40% nulls in a third (tests/test_quality.py).
BROKEN_DAY, BROKEN_MODEL = "2026-11-15", "diabetes_regressor"
DROPPED, STRINGS, NULLS = "s5", "bp", "bmi"


def next_day_environment(home: Path) -> dict[str, str]:
    """The demo's environment with its windows extended through BROKEN_DAY: tests that feed the
    demo one more day are a deployment whose windows moved on (the demo's own end at its last day)."""
    from cli.demo import demo_environment, window_range

    environment = demo_environment(home)
    return environment | window_range(environment["WATCHKEEPER_FIRST_WINDOW"], BROKEN_DAY)


@dataclass(frozen=True)
class BrokenDay:
    home: Path            # the demo copy, with BROKEN_DAY evaluated
    n_rows: int           # rows in BROKEN_MODEL's broken inference file
    n_nulls: int          # NULLS values blanked in it
    runs: list[str]       # the runs the inference sensor asked for
    failed_runs: list[str]
    rerun_after_replay: int   # runs launched by the sensor's first tick after the demo, before new files


@pytest.fixture(scope="session")
def broken_day(demo, tmp_path_factory) -> BrokenDay:
    """The demo copied (the shared demo stays as built), fed BROKEN_DAY through the code location's
    inference sensor, ticked the daemon's way on the copy's instance. The sensor is turned on with
    the cursor the replay stored, as a user turning it on after the demo does: its first tick must
    launch nothing."""
    from cli.demo import PROJECT
    from cli.location_sensors import LocationSensors
    from watchkeeper.inference_log import InferenceLog

    home = demo_copy(demo[0], tmp_path_factory.mktemp("broken_day") / "demo")
    with pytest.MonkeyPatch.context() as env:
        for name, value in next_day_environment(home).items():
            env.setenv(name, value)
        with LocationSensors(home / "dagster_home", PROJECT / "workspace.yaml") as sensors:
            rerun = len(sensors.tick("inference_sensor"))
            broken = _write_next_day(InferenceLog(home))
            launched = sensors.tick("inference_sensor")
            sensors.stop_all()
    return BrokenDay(home, len(broken), int(broken[NULLS].isna().sum()),
                     [f"{r.job_name}[{r.tags['dagster/partition']}]" for r in launched], sensors.failed_runs, rerun)


def inference_cursor(home: Path) -> str:
    """The inference sensor's cursor once it has seen every file under `home` (as after the demo's
    own ticks), from one tick on a throw-away instance."""
    import dagster as dg

    from definitions import defs
    from resources import InferenceLogResource
    from sensors.inference_log import inference_sensor

    with dg.instance_for_test() as instance, dg.build_sensor_context(
            instance=instance, definitions=defs,
            resources={"drop_folder": InferenceLogResource(root=str(home))}) as context:
        return inference_sensor.evaluate_tick(context).cursor


def _write_next_day(log) -> pd.DataFrame:
    """Every model's last demo day replayed on BROKEN_DAY; BROKEN_MODEL's copy is broken. Returns it."""
    from watchkeeper.inference_log import INFERENCE

    frames = replayed_day(log, BROKEN_DAY)
    frames[BROKEN_MODEL] = _broken(frames[BROKEN_MODEL])
    for model, frame in frames.items():
        frame.to_parquet(log.root / INFERENCE / model / f"{BROKEN_DAY}.parquet", index=False)
    return frames[BROKEN_MODEL]


def replayed_day(log, day: str) -> dict[str, pd.DataFrame]:
    """Each model's predictions of the day before `day`, moved to `day` (timestamps and ids)."""
    from watchkeeper.inference_log import INFERENCE

    last = (pd.Timestamp(day) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    frames = {}
    for model in sorted(p.name for p in (log.root / INFERENCE).iterdir()):
        frame = log.read_predictions(model, last)
        frame["timestamp"] = frame["timestamp"] + pd.Timedelta(days=1)
        frame["prediction_id"] = frame["prediction_id"].str.replace(last.replace("-", ""), day.replace("-", ""))
        frames[model] = frame
    return frames


def demo_copy(demo: Path, destination: Path) -> Path:
    """A copy of the built demo to change (the session's demo stays as built)."""
    shutil.copytree(demo, destination)
    return destination


def _broken(frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(15)
    frame = frame.drop(columns=DROPPED)
    frame[STRINGS] = np.where(frame[STRINGS] > frame[STRINGS].median(), "high", "low")
    frame.loc[rng.choice(frame.index, size=round(0.4 * len(frame)), replace=False), NULLS] = np.nan
    return frame


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def webserver(broken_day):
    """One dagster-webserver for every UI test, serving the broken-day copy of the demo."""
    from cli.demo import demo_environment

    port = free_port()
    env = {**os.environ, **demo_environment(broken_day.home)}
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"),
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
