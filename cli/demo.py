"""`watchkeeper demo`: the whole monitoring loop on the embedded default, in one folder.

It trains and registers the demo models in a real MLflow (sqlite), then replays 14 days
of traffic. After each simulated day it ticks the code location's sensors through the
sensor daemon's own tick processor (cli/location_sensors.py), so the runs belong to the
location's jobs with their run keys and sensor tags, and each sensor's cursor and tick
history are stored: turned on afterwards, a sensor starts nothing until new files land.
Then it ticks every sensor twice more and counts the runs they start (`idle_sensor_runs`,
0 expected), and leaves the sensors off with their cursors.

Only the generated files inside the demo folder are ever deleted, and a non-empty folder
that is not a demo is refused; `--serve` reopens a built demo without rebuilding it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from cli.main import CommandError

MARKER = ".watchkeeper-demo"   # written into every demo folder: what may be rebuilt
GENERATED = ("mlflow.db", "mlartifacts", "inference", "labels", "windows", "monitoring.db", "dagster_home")
PROJECT = Path(__file__).resolve().parent.parent   # workspace.yaml and dagster.yaml live here


def demo_environment(home: Path) -> dict[str, str]:
    """The environment variables the code location reads, pointing into `home`."""
    return {
        "WATCHKEEPER_SIGNING_KEY": demo_secret(home, "signing.key"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "WATCHKEEPER_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}",
        "WATCHKEEPER_STORE_URL": f"sqlite:///{home / 'monitoring.db'}",
        "WATCHKEEPER_DATA_DIR": str(home),
        "WATCHKEEPER_ALERT_POLICY": str(PROJECT / "deploy" / "alerting.demo.yaml"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "WATCHKEEPER_LOG_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    }


def demo_secret(home: Path, name: str) -> str:
    """A key of this demo folder, made once (random, owner-only) and kept under `home/secrets`.

    A deployment passes its keys in the environment; the demo keeps its own so that `make demo`
    needs no setup and a rebuilt demo can still read what an earlier one signed.
    """
    import secrets

    path = home / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


class NotADemo(CommandError):
    """The folder holds something other than a demo: nothing in it is touched."""


def demo_command(args: argparse.Namespace) -> int:
    if args.serve is not None:
        home = args.serve.resolve()
        if not (home / MARKER).exists():
            raise NotADemo(f"{home}: not a demo folder (build one with `watchkeeper demo --dir {args.serve}`)")
        os.environ.update(demo_environment(home))
    else:
        home = args.dir.resolve()
        summary = build_demo(home)
        print(json.dumps(summary, indent=2) if args.format == "json" else _text(summary))
        if args.headless:
            return 0
    serve(home, args.port)


def serve(home: Path, port: int) -> None:
    """Replace this process by `dagster dev` on the demo's instance.

    It runs from DAGSTER_HOME, so the project's dagster.yaml (copied there) is the one in use
    and `dagster dev` has no other dagster.yaml to warn about."""
    workspace = PROJECT / "workspace.yaml"
    print(f"Starting the Dagster UI on http://127.0.0.1:{port} (Ctrl-C to stop)", file=sys.stderr)
    os.chdir(home / "dagster_home")
    os.execvpe(sys.executable, [sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
                                "-h", "127.0.0.1", "-p", str(port)], os.environ)


def prepare_folder(home: Path) -> None:
    """Clear what an earlier demo generated in `home`, and nothing else; refuse a folder with
    other contents that was never a demo."""
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists():
        raise NotADemo(f"{home}: folder is not empty and holds no demo; choose an empty or new folder")
    for name in GENERATED:
        shutil.rmtree(home / name) if (home / name).is_dir() else (home / name).unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("A Watchkeeper demo folder: `watchkeeper demo` may rebuild what it generated here.\n")


def build_demo(home: Path) -> dict:
    """Build the demo in `home` from scratch and return its summary."""
    prepare_folder(home)
    os.environ.update(demo_environment(home))
    (home / "dagster_home").mkdir(parents=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")

    import dagster as dg

    from cli.location_sensors import LocationSensors
    from cli.summary import summarize
    from watchkeeper.demo import Simulator, demo_days, train_and_register

    tracking_uri = os.environ["WATCHKEEPER_MLFLOW_URI"]
    with stdout_to_stderr(), LocationSensors(home / "dagster_home", PROJECT / "workspace.yaml") as driver:
        train_and_register(tracking_uri, home / "mlartifacts")
        driver.tick("registry_sensor")
        simulator = Simulator(home, tracking_uri)
        for day in demo_days():
            simulator.release_day(day)
            for sensor in DAILY_SENSORS:
                driver.tick(sensor)
        idle = sum(len(driver.tick(sensor)) for _ in range(2) for sensor in driver.sensors)
        driver.stop_all()
        drawn = driver.instance.get_materialized_partitions(dg.AssetKey("model_scorecard"))
    summary = summarize(os.environ["WATCHKEEPER_STORE_URL"], tracking_uri, driver.failed_runs)
    for model in summary["models"]:
        model["scorecard"] = model["name"] in drawn
    return summary | {"idle_sensor_runs": idle}


@contextmanager
def stdout_to_stderr():
    """Point file descriptor 1 at stderr while the demo builds: the code server Dagster starts (a
    child process) and the libraries log to stdout, which must carry only the summary."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


DAILY_SENSORS = ("inference_sensor", "scorecard_sensor", "retraining_sensor", "alert_delivery_sensor")


def _text(summary: dict) -> str:
    lines = [f"{m['name']} v{m['version']} ({m['task']}): {m['health']}, {len(m['flagged_windows'])} of "
             f"{m['windows']} windows flagged from {m['first_flagged_window'] or '-'}; drifted features: "
             f"{', '.join(m['drifted_features']) or 'none'}; alerts: {m['alerts']}" for m in summary["models"]]
    return "\n".join(lines)
