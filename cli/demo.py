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
GENERATED = ("mlflow.db", "mlartifacts", "inference", "labels", "windows", "monitoring.db", "dagster_home", "feast")
PROJECT = Path(__file__).resolve().parent.parent   # workspace.yaml and dagster.yaml live here


def demo_environment(home: Path) -> dict[str, str]:
    """The environment variables the code location reads, pointing into `home`."""
    return {
        "WATCHKEEPER_SIGNING_KEY": demo_secret(home, "signing.key"),
        "WATCHKEEPER_KMS_DIR": demo_kms(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "WATCHKEEPER_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}",
        "WATCHKEEPER_STORE_URL": f"sqlite:///{home / 'monitoring.db'}",
        "WATCHKEEPER_DATA_DIR": str(home),
        "WATCHKEEPER_ALERT_POLICY": str(PROJECT / "deploy" / "alerting.demo.yaml"),
        "WATCHKEEPER_FEAST_REPO": str(home / "feast"),
        # alert links are absolute: the MLflow UI of the demo is `mlflow ui --backend-store-uri sqlite:///mlflow.db`
        "WATCHKEEPER_MLFLOW_UI_URL": "http://127.0.0.1:5000",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "WATCHKEEPER_LOG_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    } | demo_windows(home)


def demo_windows(home: Path) -> dict[str, str]:
    """The daily windows of the demo in `home`: from its first to its last day with inference data,
    so that the UI lists exactly the days that have files and none "missing" after them (a day
    dropped in later is included when the demo is served again). Nothing while no day has data."""
    from watchkeeper.inference_log import INFERENCE, InferenceLog

    days = sorted({f.day for f in InferenceLog(home).scan(INFERENCE, "0001-01-01", "9999-12-31").files})
    return window_range(days[0], days[-1]) if days else {}


def window_range(first: str, last: str) -> dict[str, str]:
    """The variables that bound the code location's daily windows (monitoring_assets/partitions.py)."""
    return {"WATCHKEEPER_FIRST_WINDOW": first, "WATCHKEEPER_LAST_WINDOW": last}


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


def demo_endpoint_secrets(home: Path) -> None:
    """The exporter's scrape token and a TLS certificate for 127.0.0.1/localhost, signed by the
    demo's own CA (secrets/ca.crt is what a client trusts), so that `watchkeeper exporter` and
    `watchkeeper ui` run in the demo folder serve https with credentials and no setup."""
    from watchkeeper.security.certificates import issue, new_authority

    demo_secret(home, "exporter.token")
    folder = home / "secrets"
    if all((folder / name).exists() for name in ("ca.crt", "tls.crt", "tls.key")):
        return
    authority = new_authority()
    server = issue(authority, ["localhost", "127.0.0.1", "::1"])
    for name, data in (("ca.crt", authority.certificate), ("tls.crt", server.certificate), ("tls.key", server.key)):
        (folder / name).touch(mode=0o600)
        (folder / name).write_bytes(data)


def demo_kms(home: Path) -> str:
    """The demo's key-encryption keys (a file KMS under `home/secrets/kms`, made once): with it,
    inference files, windows, reference data and sealed store columns are encrypted at rest."""
    from watchkeeper.security.kms import FileKms

    folder = home / "secrets" / "kms"
    FileKms.create(folder)
    return str(folder)


class NotADemo(CommandError):
    """The folder holds something other than a demo: nothing in it is touched."""


def demo_command(args: argparse.Namespace) -> int:
    os.environ["WATCHKEEPER_DAGSTER_URL"] = f"http://127.0.0.1:{args.port}"   # alert links open this UI
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
    from watchkeeper.demo import demo_days

    prepare_folder(home)
    days = demo_days()      # the windows are the days about to be replayed
    os.environ.update(demo_environment(home) | window_range(days[0].isoformat(), days[-1].isoformat()))
    demo_endpoint_secrets(home)
    (home / "dagster_home").mkdir(parents=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")

    import dagster as dg

    from cli.location_sensors import LocationSensors
    from cli.summary import summarize
    from watchkeeper.demo import Simulator, train_and_register
    from watchkeeper.demo.feast_model import FeastDemo

    tracking_uri = os.environ["WATCHKEEPER_MLFLOW_URI"]
    with stdout_to_stderr(), LocationSensors(home / "dagster_home", PROJECT / "workspace.yaml") as driver:
        train_and_register(tracking_uri, home / "mlartifacts")
        feast = FeastDemo(home)     # a Feast repository and a model fed by it (docs/feature_store.md)
        feast.register(tracking_uri, home / "mlartifacts")
        driver.tick("registry_sensor")
        driver.tick("feast_sensor")          # records the Feast registry; later applies re-profile
        simulator = Simulator(home, tracking_uri)
        for day in demo_days():
            simulator.release_day(day)
            feast.release_day(day)
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
