"""What an engineer reads without opening anything: verdict texts in whole sentences naming the
drifted features and the root cause, pass/warn/fail per model, a CBPE estimate flagged when the
labels disagree with it, concept-drift alarms with their detector and error rates, pictures
that fit their frame with rounded labels."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from watchkeeper.concept import label_alarms, with_error_rates
from watchkeeper.links import ticket_url
from watchkeeper.messages import verdict_text
from watchkeeper.plots import _bin_ticks, drift_histograms

FRAGMENTS = re.compile(r"\.;|;\s*each signal|^\W|[^.]$")


def feature(name: str, effect: float) -> dict:
    edges = [0.0123456 * i for i in range(11)]
    labels = ["<= 0"] + [f"({a:.4g}, {b:.4g}]" for a, b in zip(edges, edges[1:])] + ["> 0.1235"]
    share = [1 / len(labels)] * len(labels)
    return {"name": name, "kind": "numeric", "effect_size": effect, "effect_metric": "wasserstein",
            "bin_labels": labels, "reference_share": share, "current_share": share}


def test_drift_picture_fits_a_600px_frame_with_short_rounded_ticks():
    png = drift_histograms([feature(f"f{i}", 1.0 + i) for i in range(4)], "m 2026-11-08: reference vs current")
    width, height = Image.open(io.BytesIO(png)).size
    assert width <= 600, f"{width} px: wider than the UI's dialog"
    ticks = _bin_ticks(feature("x", 1.0)["bin_labels"])
    assert len(ticks) <= 8
    assert all(len(re.sub(r"[^0-9]", "", t).lstrip("0")) <= 4 for _, t in ticks), ticks


def test_concept_alarms_carry_detector_and_error_rates():
    [alarm] = with_error_rates(label_alarms([104], 100, ["a", "b", "c", "d", "e", "f"], [f"t{i}" for i in range(6)]),
                               [0, 0, 0, 0, 1, 1], 100, "adwin")
    assert alarm == {"index": 104, "prediction_id": "e", "timestamp": "t4", "detector": "adwin",
                     "error_rate_before": 0.0, "error_rate_after": 1.0}


def test_ticket_links_open_the_jira_issue_and_the_servicenow_record_of_its_kind():
    assert ticket_url("jira", {"server": "https://jira.example/"}, "MLOPS-7", "incident") == \
        "https://jira.example/browse/MLOPS-7"
    servicenow = {"instance_url": "https://sn.example"}
    assert ticket_url("servicenow", servicenow, "INC0012", "incident") == \
        "https://sn.example/incident.do?sysparm_query=number%3DINC0012"
    assert ticket_url("servicenow", servicenow, "PRB0003", "problem").startswith("https://sn.example/problem.do?")
    assert ticket_url("servicenow", servicenow, "CHG0001", "change").startswith("https://sn.example/change_request.do?")
    assert ticket_url("outbox", {}, "m:1:performance", "incident") is None


def test_segment_values_read_rounded_even_when_grouping_made_them_text():
    from watchkeeper.stages import segment_value

    assert [segment_value(v) for v in (-0.044641636506989144, "-0.044641636506989144", 2.0, "007", "north")] == \
        ["-0.04464", "-0.04464", "2", "007", "north"]


def test_verdict_text_joins_sentences_without_fragments():
    text = verdict_text([{"signal": "performance", "detail": "Accuracy 0.6 is below the reference."},
                         {"signal": "history", "detail": "Each signal was also weighed."}], with_history=False)
    assert text == "Accuracy 0.6 is below the reference."


@pytest.mark.slow
def test_demo_verdicts_read_as_sentences_naming_features_and_causes(demo):
    from watchkeeper.store import MonitoringStore

    home, summary = demo
    store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
    degraded = store.verdicts("breast_cancer_classifier", window="2026-11-08")[0]
    drifted = store.verdicts("diabetes_regressor", window="2026-11-08")[0]
    for verdict in (degraded, drifted):
        for reason in verdict.reasons:
            assert not FRAGMENTS.search(reason["detail"]), f"not a whole sentence: {reason['detail']!r}"
    text = verdict_text(degraded.reasons)
    assert "Accuracy" in text and "below the reference" in text and "concept drift" in text
    drift_text = verdict_text(drifted.reasons)
    assert re.search(r"features drifted .*: (bmi|bp|s5) \(wasserstein [\d.]+ reference SDs\)", drift_text)
    concept = [r for r in degraded.reasons if r["signal"] == "concept_drift"]
    if concept:
        assert re.search(r"The .+? detector .* at prediction \d+ \(\d{4}-\d\d-\d\d \d\d:\d\d\), error rate [\d.]+ before and [\d.]+ after",
                         concept[0]["detail"])
    assert all(m["scorecard"] for m in summary["models"]), "every model has a scorecard, wine_classifier too"


def test_cbpe_is_called_blind_only_where_the_realised_interval_contradicts_it():
    """Concept drift (realised 0.605 [0.561, 0.65], CBPE 0.965) is marked and noted; a perfect window
    (realised [1, 1], CBPE 0.998) is not: two points are no disagreement."""
    from types import SimpleNamespace

    from monitoring_assets.performance import CBPE_BLIND, metadata
    from watchkeeper.performance import MetricValue

    def outcome(model: str, realised: MetricValue, estimate: float) -> SimpleNamespace:
        metrics = SimpleNamespace(realised=[realised], estimated=[MetricValue("accuracy", estimate, None, None)],
                                  segments=[], n_labelled=300, n_rows=337)
        return SimpleNamespace(model=model, metrics=metrics, reference=SimpleNamespace(
            primary_metric="accuracy", metrics={"accuracy": MetricValue("accuracy", 0.959, None, None)}))

    found = metadata("2026-11-08", [outcome("drifted", MetricValue("accuracy", 0.605, 0.561, 0.65), 0.965),
                                    outcome("perfect", MetricValue("accuracy", 1.0, 1.0, 1.0), 0.998)])
    metrics = {r.data["model"]: r.data for r in found["metrics"].value.records}
    models = {r.data["model"]: r.data for r in found["models"].value.records}
    assert metrics["drifted"] == {"model": "drifted", "metric": "accuracy", "realised": "0.605 [0.561, 0.65]",
                                  "reference": "0.959", "cbpe": "0.965*"}
    assert metrics["perfect"]["cbpe"] == "0.998"
    assert models == {"drifted": {"model": "drifted", "labelled": "300 / 337 (89%)", "note": CBPE_BLIND},
                      "perfect": {"model": "perfect", "labelled": "300 / 337 (89%)", "note": ""}}
