"""`watchkeeper demo`: the whole monitoring loop on the embedded default, in one folder.

It trains and registers the demo models in a real MLflow (sqlite), then replays 14 days
of traffic. After each simulated day it ticks the same sensors the Dagster daemon would
run and executes the runs they request in-process on a real Dagster instance, so the
runs, materializations and metadata are exactly what the UI shows afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

GENERATED = ("mlflow.db", "mlartifacts", "inference", "labels", "windows", "monitoring.db", "dagster_home")
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
        # alert links are absolute: the MLflow UI of the demo is `mlflow ui --backend-store-uri sqlite:///mlflow.db`
        "WATCHKEEPER_MLFLOW_UI_URL": "http://127.0.0.1:5000",
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


def demo_command(args: argparse.Namespace) -> int:
    home = args.dir.resolve()
    os.environ["WATCHKEEPER_DAGSTER_URL"] = f"http://127.0.0.1:{args.port}"   # alert links open this UI
    summary = build_demo(home)
    print(json.dumps(summary, indent=2) if args.format == "json" else _text(summary))
    if args.headless:
        return 0
    workspace = PROJECT / "workspace.yaml"
    print(f"Starting the Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    os.execvpe(sys.executable, [sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
                                "-h", "127.0.0.1", "-p", str(args.port)], os.environ)


def build_demo(home: Path) -> dict:
    """Build the demo in `home` from scratch and return its summary."""
    for name in GENERATED:
        shutil.rmtree(home / name, ignore_errors=True) if (home / name).is_dir() else (home / name).unlink(missing_ok=True)
    os.environ.update(demo_environment(home))
    demo_endpoint_secrets(home)
    (home / "dagster_home").mkdir(parents=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")

    from dagster import DagsterInstance

    from cli.sensor_driver import SensorDriver
    from cli.summary import summarize
    from definitions import defs
    from watchkeeper.demo import Simulator, demo_days, train_and_register

    tracking_uri = os.environ["WATCHKEEPER_MLFLOW_URI"]
    train_and_register(tracking_uri, home / "mlartifacts")
    with DagsterInstance.get() as instance:
        driver = SensorDriver(defs, instance)
        driver.tick("registry_sensor")
        simulator = Simulator(home, tracking_uri)
        for day in demo_days():
            simulator.release_day(day)
            for sensor in ("inference_sensor", "scorecard_sensor", "retraining_sensor", "alert_delivery_sensor"):
                driver.tick(sensor)
        return summarize(os.environ["WATCHKEEPER_STORE_URL"], tracking_uri, driver.failed_runs)


def _text(summary: dict) -> str:
    lines = [f"{m['name']} v{m['version']} ({m['task']}): {m['health']}, {len(m['flagged_windows'])} of "
             f"{m['windows']} windows flagged from {m['first_flagged_window'] or '-'}; drifted features: "
             f"{', '.join(m['drifted_features']) or 'none'}; alerts: {m['alerts']}" for m in summary["models"]]
    return "\n".join(lines)
