"""The code location loads, validates, and keeps the lineage it was designed with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from definitions import defs

# The monitoring graph of DESIGN.md: asset -> its upstream assets. A change here is a
# lineage change and must be deliberate.
EXPECTED_DEPS = {
    "inference_log": set(),
    "labels": set(),
    "reference_profile": set(),
    "production_window": {"inference_log", "reference_profile"},
    "drift_report": {"production_window", "reference_profile"},
    "performance_metrics": {"production_window", "labels", "reference_profile"},
    "concept_drift": {"labels", "production_window", "reference_profile"},
    "model_health": {"drift_report", "performance_metrics", "concept_drift"},
    "model_scorecard": {"model_health"},
}
PARTITIONS = {"reference_profile": "models", "model_scorecard": "models"}


def test_asset_graph_matches_the_design():
    graph = defs.resolve_asset_graph()
    deps = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
            for key in graph.get_all_asset_keys()}
    assert deps == EXPECTED_DEPS


def test_partitioning_models_and_daily_windows():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        name = key.to_user_string()
        if name in PARTITIONS:
            assert partitions.name == PARTITIONS[name]
        else:
            assert partitions.get_cron_schedule() == "0 0 * * *", name


def test_windows_run_from_the_configured_first_day_to_the_last_or_yesterday():
    from datetime import datetime, timedelta, timezone

    from monitoring_assets.partitions import window_partitions

    demo = window_partitions({"WATCHKEEPER_FIRST_WINDOW": "2026-11-01", "WATCHKEEPER_LAST_WINDOW": "2026-11-14"})
    assert demo.get_partition_keys() == [f"2026-11-{d:02d}" for d in range(1, 15)]
    live = window_partitions({"WATCHKEEPER_FIRST_WINDOW": "2026-10-30"})
    assert live.get_first_partition_key() == "2026-10-30"
    assert live.get_last_partition_key() == (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    assert window_partitions({}).get_first_partition_key() == "2026-11-01"
    one = window_partitions({"WATCHKEEPER_FIRST_WINDOW": "2026-11-14", "WATCHKEEPER_LAST_WINDOW": "2026-11-14"})
    assert one.get_partition_keys() == ["2026-11-14"]


def test_late_labels_of_the_last_windows_map_inside_the_range():
    """A window's labels arrive up to MAX_LABEL_DELAY_DAYS later; near the last window the mapping
    stops at it instead of asking for label days that do not exist (which would fail a backfill)."""
    from monitoring_assets.partitions import window_partitions
    from monitoring_assets.performance import LATE_LABELS

    demo = window_partitions({"WATCHKEEPER_FIRST_WINDOW": "2026-11-01", "WATCHKEEPER_LAST_WINDOW": "2026-11-14"})
    mapped = LATE_LABELS.partition_mapping.get_upstream_mapped_partitions_result_for_partitions(
        demo.subset_with_partition_keys(["2026-11-12"]), demo, demo)
    assert mapped.partitions_subset.get_partition_keys() == ["2026-11-12", "2026-11-13", "2026-11-14"]
    assert mapped.required_but_nonexistent_subset.get_partition_keys() == []


@pytest.mark.parametrize("environment, message", [
    ({"WATCHKEEPER_LAST_WINDOW": "2026-11"}, "WATCHKEEPER_LAST_WINDOW='2026-11': expected a day like 2026-11-14"),
    ({"WATCHKEEPER_FIRST_WINDOW": "2026-02-30"}, "WATCHKEEPER_FIRST_WINDOW='2026-02-30': expected a day"),
    ({"WATCHKEEPER_FIRST_WINDOW": "20261101"}, "WATCHKEEPER_FIRST_WINDOW='20261101': expected a day"),
    ({"WATCHKEEPER_FIRST_WINDOW": "2026-11-05", "WATCHKEEPER_LAST_WINDOW": "2026-11-04"},
     "WATCHKEEPER_LAST_WINDOW=2026-11-04 is before WATCHKEEPER_FIRST_WINDOW=2026-11-05"),
])
def test_a_bad_window_range_is_one_line_naming_the_variable(environment, message):
    from monitoring_assets.partitions import window_partitions

    with pytest.raises(ValueError) as raised:
        window_partitions(environment)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_every_asset_is_described_owned_and_tagged():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and node.owners == ["team:ml-platform"], key
        assert node.tags.get("domain") == "model-monitoring", key


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "WATCHKEEPER_MLFLOW_URI": "sqlite:///unused.db",
           "WATCHKEEPER_ALERT_POLICY": str(ROOT / "deploy" / "alerting.demo.yaml"),
           "WATCHKEEPER_STORE_URL": "sqlite:///unused.db", "WATCHKEEPER_DATA_DIR": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    done = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful for code location watchkeeper" in done.stderr + done.stdout


def test_missing_configuration_names_the_variable(monkeypatch):
    """An unset WATCHKEEPER_* variable fails the run with its name, not a trace from deep inside."""
    import dagster as dg

    from monitoring_assets import evaluate_models
    from resources import (
        AlertingResource, FeastResource, InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource,
    )

    monkeypatch.delenv("WATCHKEEPER_STORE_URL", raising=False)
    with pytest.raises(Exception, match="WATCHKEEPER_STORE_URL"):
        dg.materialize([evaluate_models], selection=["model_health"], partition_key="2026-11-01",
                       resources={"monitoring_store": MonitoringStoreResource(url=dg.EnvVar("WATCHKEEPER_STORE_URL")),
                                  "drop_folder": InferenceLogResource(root=str(ROOT)),
                                  "monitoring_config": MonitoringConfigResource(path=""), "feature_store": FeastResource(),
                                  "alerting": AlertingResource(policy_path=str(ROOT / "deploy" / "alerting.demo.yaml"))},
                       instance=dg.DagsterInstance.ephemeral())
