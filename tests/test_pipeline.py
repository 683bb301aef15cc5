"""The demo end to end: real MLflow (sqlite), a real Dagster instance, real runs.

These assert the verdicts the simulator planted, not merely that runs succeeded.
"""

from __future__ import annotations

import dagster as dg
import pytest

from watchkeeper.demo import DRIFT_START_DAY, demo_days

pytestmark = pytest.mark.slow
DAYS = [d.isoformat() for d in demo_days()]
DRIFTED_DAYS = DAYS[DRIFT_START_DAY - 1:]


def by_name(summary: dict) -> dict[str, dict]:
    return {m["name"]: m for m in summary["models"]}


def test_every_run_succeeded(demo):
    _, summary = demo
    assert summary["failed_runs"] == []
    assert {m["windows"] for m in summary["models"]} == {len(DAYS)}


def test_covariate_shift_is_flagged_from_the_drift_day(demo):
    model = by_name(demo[1])["diabetes_regressor"]
    assert model["drifted_windows"] == DRIFTED_DAYS
    assert {"bmi", "bp", "s5"} <= set(model["drifted_features"])
    assert model["health"] == "drifted" and model["alert_kinds"] == ["data_drift"]
    assert model["concept_alarm_days"] == [], "inputs moved, but the relation to the label did not"


def test_concept_drift_is_flagged_by_performance_not_data(demo):
    model = by_name(demo[1])["breast_cancer_classifier"]
    assert model["drifted_windows"] == []
    assert model["degraded_windows"] == DRIFTED_DAYS
    assert model["health"] == "degraded"
    assert model["alert_kinds"] == ["concept_drift", "performance", "promotion_approval"]
    assert model["concept_alarm_days"][0] in DRIFTED_DAYS[:2], "the error-stream detector fires within a day"


def test_clean_model_stays_clean(demo):
    model = by_name(demo[1])["wine_classifier"]
    assert model["flagged_windows"] == [] and model["alerts"] == 0 and model["health"] == "ok"
    assert model["concept_alarm_days"] == []


@pytest.mark.parametrize("name, promotion", [("breast_cancer_classifier", "needs_approval"),
                                             ("diabetes_regressor", "rejected")])
def test_a_persisting_problem_retrains_once_and_the_gate_decides(demo, name, promotion):
    model = by_name(demo[1])[name]
    assert model["retrains"] == 1 and model["challenger_version"] == "2"
    assert model["promotion"] == promotion, "the demo's policy asks a person before promoting"


def test_clean_model_is_never_retrained_nor_alerted(demo):
    model = by_name(demo[1])["wine_classifier"]
    assert (model["retrains"], model["challenger_version"], model["promotion"]) == (0, None, None)
    assert (model["outbox_alerts"], model["tickets"], model["escalations"]) == (0, 0, 0)


def test_one_ticket_per_problem_and_an_escalation_when_it_persists(demo):
    concept, covariate = by_name(demo[1])["breast_cancer_classifier"], by_name(demo[1])["diabetes_regressor"]
    # critical problems (performance, concept drift) and the promotion approval each get one ticket,
    # however many windows they last; the warning-level data drift gets none
    assert (concept["tickets"], covariate["tickets"]) == (3, 0)
    assert concept["escalations"] >= 1 and covariate["escalations"] >= 1
    assert demo[1]["outbox"]["pending"] == 0 and demo[1]["outbox"]["dead"] == 0


def test_alerts_carry_the_enrichment(demo, monkeypatch):
    from cli.demo import demo_environment
    from watchkeeper.store import MonitoringStore

    monkeypatch.setenv("WATCHKEEPER_KMS_DIR", demo_environment(demo[0])["WATCHKEEPER_KMS_DIR"])   # payloads are sealed
    rows = MonitoringStore(f"sqlite:///{demo[0] / 'monitoring.db'}").outbox().rows()
    drift = next(r["payload"] for r in rows if r["fingerprint"] == "diabetes_regressor:1:data_drift")
    assert drift["window"] == DRIFTED_DAYS[0] and drift["severity"] == "warning"
    assert {"bmi", "bp", "s5"} <= {f["name"] for f in drift["features"]}
    assert all(f["effect_size"] > 0 and f["p_value"] is not None for f in drift["features"])
    assert set(drift["links"]) >= {"dagster_run", "dagster_asset"}
    performance = next(r["payload"] for r in rows if r["fingerprint"] == "breast_cancer_classifier:1:performance")
    [accuracy] = [m for m in performance["metrics"] if m["name"] == "accuracy"]
    assert accuracy["upper"] < accuracy["reference"]


def test_late_labels_are_joined_as_they_arrive(demo):
    completeness = by_name(demo[1])["wine_classifier"]["label_completeness"]
    assert completeness[DAYS[0]] == 1.0
    assert 0.0 < completeness[DAYS[-1]] < 0.6, "the last day's labels are still arriving"


@pytest.fixture(scope="module")
def instance(demo):
    with dg.DagsterInstance.from_config(str(demo[0] / "dagster_home")) as instance:
        yield instance


def test_every_window_partition_was_materialized(instance):
    for asset in ("production_window", "drift_report", "performance_metrics", "concept_drift", "model_health"):
        materialized = instance.get_materialized_partitions(dg.AssetKey(asset))
        assert materialized == set(DAYS), asset
    assert instance.get_dynamic_partitions("models") == ["breast_cancer_classifier", "churn_feast",
                                                         "diabetes_regressor", "wine_classifier"]


def test_late_labels_refreshed_earlier_windows(instance):
    refreshes = instance.get_runs(dg.RunsFilter(job_name="refresh_labels"))
    assert len(refreshes) >= len(DAYS) - 1, "each day's arriving labels refresh the windows they belong to"


def latest_metadata(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1).records
    return records[0].asset_materialization.metadata


def test_drift_report_shows_tables_and_a_plot(instance):
    metadata = latest_metadata(instance, "drift_report", DRIFTED_DAYS[0])
    report = metadata["report"].value
    assert "data:image/png;base64," in report and "| name | kind | test |" in report
    assert "diabetes_regressor — **dataset drift**" in report


def test_health_records_root_cause_and_history_evidence(demo):
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{demo[0] / 'monitoring.db'}")
    [verdict] = store.verdicts("breast_cancer_classifier", DRIFTED_DAYS[1])
    signals = {r["signal"]: r for r in verdict.reasons}
    assert signals["root_cause"]["kind"] == "concept", "no input drifted: the relation to the label changed"
    assert signals["performance"]["upper"] < signals["performance"]["reference"]
    [drifted] = store.verdicts("diabetes_regressor", DRIFTED_DAYS[1])
    decisions = next(r for r in drifted.reasons if r["signal"] == "history")["decisions"]
    assert any(d["alert"] and d["anomaly"] and d["anomaly"]["is_anomalous"] for d in decisions)


def test_drift_reports_carry_the_joint_pca_test_quiet_on_the_clean_model(demo):
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{demo[0] / 'monitoring.db'}")
    joint = [r.report["multivariate"][0] for r in store.drift("wine_classifier")]
    assert len(joint) == len(DAYS) and {j["method"] for j in joint} == {"pca_reconstruction"}
    assert sum(j["drifted"] for j in joint) <= 1, "calibrated at alpha 0.01: clean windows stay quiet"
    assert all(j["threshold"] > 0.5 for j in joint), "the AUC a window must reach sits above the null's 0.5"


def test_configured_segments_get_their_own_metrics(demo):
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{demo[0] / 'monitoring.db'}")
    [row] = store.segments("diabetes_regressor", DAYS[0])
    segments = {r["segment"] for r in row.segments if r["metric"] == "mae"}
    assert len(segments) == 2 and all(s.startswith("sex=") for s in segments)
    assert store.segments("wine_classifier", DAYS[0])[0].segments == []


def test_cbpe_estimates_every_window_of_the_classifiers(demo):
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{demo[0] / 'monitoring.db'}")
    rows = store.metrics("wine_classifier", DAYS[-1])
    estimated = {r.metric: r for r in rows if r.metric.startswith("estimated_")}
    realised = {r.metric: r for r in rows if not r.metric.startswith("estimated_")}
    assert estimated["estimated_accuracy"].value is not None
    assert abs(estimated["estimated_accuracy"].value - realised["accuracy"].value) < 0.1


def test_scorecard_shows_the_history_of_a_flagged_model(instance):
    metadata = latest_metadata(instance, "model_scorecard", "breast_cancer_classifier")
    history = metadata["history"].value
    assert all(day in history for day in DAYS)
    assert metadata["latest_status"].value == "degraded"
    assert "| concept_alarms |" in history
    assert metadata["trend"].value.startswith("![")
    problems = {r.data["kind"]: r.data for r in metadata["problems"].records}
    assert problems["performance"]["state"] == "open" and "tickets" in problems["performance"]["tickets"]


def test_the_feast_fed_model_takes_its_reference_and_windows_from_feast(demo):
    """churn_feast's run logged entity rows only and serving logs only customer ids: its reference and
    every window were joined from the demo's Feast repository, and the drift is named as Feast does."""
    model = by_name(demo[1])["churn_feast"]
    assert model["windows"] == len(DAYS) and model["drifted_windows"] == DRIFTED_DAYS
    assert model["drifted_features"] == ["customer_stats:x0"]
    assert model["retrains"] == 1, "the retrain op joined its reference from Feast too"


def test_each_model_lists_its_problems_with_state_and_tickets(demo):
    """The contract key `problems`: [{"kind", "state", "opened", "tickets"}] per model."""
    models = by_name(demo[1])
    concept = {p["kind"]: p for p in models["breast_cancer_classifier"]["problems"]}
    assert set(concept) == {"concept_drift", "performance", "promotion_approval"}
    assert all({"kind", "state", "opened", "tickets"} <= set(p) for m in models.values() for p in m["problems"])
    assert {p["state"] for m in models.values() for p in m["problems"]} <= {"open", "acknowledged", "resolved",
                                                                           "reopened"}
    assert concept["performance"]["opened"] == DRIFTED_DAYS[0] and concept["performance"]["state"] == "open"
    assert concept["performance"]["tickets"] == [{"channel": "tickets",
                                                  "id": "breast_cancer_classifier:1:performance"}]
    assert concept["promotion_approval"]["record"] == "change"
    assert models["wine_classifier"]["problems"] == []
