"""The retraining loop closes: a promoted challenger becomes the profiled champion."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

pytestmark = pytest.mark.slow
MODEL = "breast_cancer_classifier"


def test_promoting_the_challenger_refreshes_the_reference_profile(demo, tmp_path, monkeypatch):
    from cli.demo import demo_environment
    from sensor_driver import SensorDriver
    from watchkeeper.registry import Registry
    from watchkeeper.retraining.gate import promote
    from watchkeeper.store import MonitoringStore

    home = tmp_path / "demo"
    shutil.copytree(demo[0], home)
    for name, value in demo_environment(home).items():
        monkeypatch.setenv(name, value)
    from definitions import defs

    registry = Registry(demo_environment(home)["WATCHKEEPER_MLFLOW_URI"])
    challenger = next(m for m in demo[1]["models"] if m["name"] == MODEL)["challenger_version"]
    promote(registry, MODEL, challenger)   # a person approved the promotion ticket
    assert registry.champions()[MODEL].version == challenger

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        driver = SensorDriver(defs, instance)
        driver.cursors["registry_sensor"] = json.dumps({"versions": {m["name"]: "1" for m in demo[1]["models"]}})
        requests = driver.tick("registry_sensor")
    assert [(r.partition_key, r.run_key) for r in requests] == [(MODEL, f"{MODEL}:{challenger}")]
    assert driver.failed_runs == []
    profiles = MonitoringStore(demo_environment(home)["WATCHKEEPER_STORE_URL"]).latest_profiles()
    assert profiles[MODEL].version == challenger, "the new champion is now the reference windows are judged by"
    assert {profiles[m].version for m in profiles if m != MODEL} == {"1"}
