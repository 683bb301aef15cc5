"""The promotion gate: paired bootstrap decisions, promotion by policy, and `watchkeeper gate` for CI/CD."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error

from cli.main import main
from test_retraining import (  # noqa: F401  (empty_mlflow_db and tracking_uri are fixtures)
    FEATURES, MODEL, aliases, empty_mlflow_db, make_frame, register_champion, tracking_uri,
)
from watchkeeper.registry import CHAMPION, Registry
from watchkeeper.retraining.challenger import CHALLENGER, register_challenger
from watchkeeper.retraining.gate import (
    GATE_STATUS_TAG, GATE_TAG, NEEDS_APPROVAL, PREVIOUS_CHAMPION, PROMOTED, REJECTED, TICKET, GateError,
    apply_decision, evaluate_gate,
)
from watchkeeper.retraining.trainers import SklearnPipelineTrainer

FIT = SklearnPipelineTrainer()


@pytest.fixture
def versions(tmp_path, tracking_uri):
    """v1 champion trained before the concept drift; v2 trained after it; v3 on another pre-drift sample."""
    register_champion(tracking_uri, tmp_path / "artifacts", make_frame(1000, 1), make_frame(400, 2))
    registry = Registry(tracking_uri)
    champion = registry.champions()[MODEL]
    for train in (make_frame(1000, 3, concept="after"), make_frame(1000, 4)):
        estimator = FIT.fit(train, FEATURES, "target", "binary")
        register_challenger(registry, champion, estimator, train, make_frame(300, 5), "retrain", {})
    models = {v: registry.load_model(champion.__class__(MODEL, v, "", "binary")) for v in ("1", "2", "3")}
    return registry, models


def test_a_better_challenger_is_promoted_and_the_alias_moves(versions):
    registry, models = versions
    after = make_frame(1500, 50, concept="after")
    decision = evaluate_gate("binary", models["1"], models["2"], after, FEATURES, margin=0.05)
    assert decision.promote and decision.difference.lower > 0.05
    champion_accuracy = accuracy_score(after["target"], models["1"].predict(after[FEATURES]))
    assert decision.champion.value == pytest.approx(champion_accuracy)
    assert decision.difference.value == pytest.approx(decision.challenger.value - decision.champion.value)
    assert apply_decision(registry, MODEL, "2", decision) == PROMOTED
    assert aliases(registry) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1", CHALLENGER: "3"}
    tags = registry.client.get_model_version(MODEL, "2").tags
    assert tags[GATE_STATUS_TAG] == PROMOTED and json.loads(tags[GATE_TAG])["promote"] is True


def test_an_equally_good_challenger_is_not_promoted(versions):
    """Noise does not promote: v3 learnt the same relationship from another sample."""
    registry, models = versions
    before = make_frame(1500, 60)
    decision = evaluate_gate("binary", models["1"], models["3"], before, FEATURES)
    assert not decision.promote
    assert decision.difference.lower <= 0 <= decision.difference.upper
    assert apply_decision(registry, MODEL, "3", decision) == REJECTED
    assert aliases(registry) == {CHAMPION: "1", CHALLENGER: "3"}
    itself = evaluate_gate("binary", models["1"], models["1"], before, FEATURES)
    assert not itself.promote and itself.difference.lower == itself.difference.upper == 0


def test_a_worse_challenger_is_not_promoted(versions):
    _, models = versions
    decision = evaluate_gate("binary", models["1"], models["2"], make_frame(1500, 70), FEATURES)
    assert not decision.promote and decision.difference.upper < 0
    assert "does not clear the margin" in decision.reason


def test_ticket_policy_asks_a_person_and_leaves_the_aliases(versions):
    registry, models = versions
    decision = evaluate_gate("binary", models["1"], models["2"], make_frame(1500, 50, concept="after"), FEATURES)
    assert apply_decision(registry, MODEL, "2", decision, approval=TICKET) == NEEDS_APPROVAL
    assert aliases(registry)[CHAMPION] == "1"
    assert registry.client.get_model_version(MODEL, "2").tags[GATE_STATUS_TAG] == NEEDS_APPROVAL


def test_paired_interval_covers_the_true_difference_and_is_narrower_than_either_model():
    """Coverage of the 90% paired interval over 200 evaluation samples, against the difference on 400k rows."""
    a = FIT.fit(make_frame(1000, 1), FEATURES, "target", "binary")
    b = FIT.fit(make_frame(150, 2), FEATURES, "target", "binary")      # slightly worse: less data
    population = make_frame(400_000, 3)
    truth = (accuracy_score(population["target"], b.predict(population[FEATURES]))
             - accuracy_score(population["target"], a.predict(population[FEATURES])))
    covered, narrower = 0, 0
    for seed in range(200):
        d = evaluate_gate("binary", a, b, make_frame(400, 1000 + seed), FEATURES, confidence=0.9, n_boot=400,
                          seed=seed)
        covered += d.difference.lower <= truth <= d.difference.upper
        narrower += (d.difference.upper - d.difference.lower) < (d.champion.upper - d.champion.lower)
    assert 166 <= covered <= 194           # Binomial(200, 0.9): 99.9% band
    assert narrower == 200


def test_error_metrics_gate_on_relative_improvement():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(3000, 4)), columns=FEATURES)
    frame = X.assign(target=X @ np.array([3.0, -2.0, 1.0, 0.5]) + rng.normal(size=3000))
    good = FIT.fit(frame.iloc[:1000], FEATURES, "target", "regression")
    poor = FIT.fit(frame.iloc[:1000].assign(target=lambda f: f["target"] + 2 * f["x3"]), FEATURES, "target",
                   "regression")
    evaluation = frame.iloc[1000:]
    decision = evaluate_gate("regression", poor, good, evaluation, FEATURES, margin=0.2)
    mae_poor, mae_good = (mean_absolute_error(evaluation["target"], m.predict(evaluation[FEATURES]))
                          for m in (poor, good))
    assert decision.metric == "mae"
    assert decision.difference.value == pytest.approx((mae_poor - mae_good) / mae_poor)
    assert decision.promote == (decision.difference.lower > 0.2) and decision.promote


def test_bad_input_is_one_line(versions):
    _, models = versions
    frame = make_frame(100, 0)
    with pytest.raises(GateError, match="metric 'mae' does not apply to binary"):
        evaluate_gate("binary", models["1"], models["2"], frame, FEATURES, metric="mae")
    with pytest.raises(GateError, match="lacks columns target"):
        evaluate_gate("binary", models["1"], models["2"], frame.drop(columns="target"), FEATURES)
    with pytest.raises(GateError, match="different classes"):
        evaluate_gate("binary", models["1"], FIT.fit(frame.assign(target=frame["target"] + 1), FEATURES, "target",
                                                     "binary"), frame, FEATURES)


# ---- watchkeeper gate ----

def gate(capsys, *argv) -> tuple[int, str, str]:
    code = main(["gate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_gate_command_exit_codes(versions, tracking_uri, tmp_path, capsys):
    registry, _ = versions
    make_frame(1500, 50, concept="after").to_parquet(tmp_path / "after.parquet")
    make_frame(1500, 60).to_csv(tmp_path / "before.csv", index=False)
    common = ["--tracking-uri", tracking_uri, "--model", MODEL]

    code, out, _ = gate(capsys, *common, "--candidate", "2", "--data", str(tmp_path / "after.parquet"),
                        "--margin", "0.05")
    result = json.loads(out)
    assert code == 0 and result["promote"] and (result["candidate"], result["against"]) == ("2", "1")
    assert {"metric", "champion", "challenger", "difference", "margin", "reason"} <= set(result)

    code, out, _ = gate(capsys, *common, "--candidate", "3", "--data", str(tmp_path / "before.csv"))
    assert code == 1 and json.loads(out)["promote"] is False
    code, out, _ = gate(capsys, *common, "--candidate", "challenger", "--against", "1", "--format", "text",
                        "--data", str(tmp_path / "before.csv"))
    assert code == 1 and out.startswith("FAIL churn v3 vs v1")
    assert aliases(registry) == {CHAMPION: "1", CHALLENGER: "3"}   # the command never moves aliases

    for argv, message in (
        (["--candidate", "2", "--data", str(tmp_path / "missing.csv")], "no such file"),
        (["--candidate", "9", "--data", str(tmp_path / "before.csv")], MODEL),
        (["--candidate", "2", "--data", str(tmp_path / "before.csv"), "--metric", "mae"], "does not apply"),
    ):
        code, out, err = gate(capsys, *common, *argv)
        assert (code, out) == (2, "") and message in err and err.count("\n") == 1
    code, _, err = gate(capsys, "--tracking-uri", f"sqlite:///{tmp_path}/nope.db", "--model", MODEL,
                        "--candidate", "2", "--data", str(tmp_path / "before.csv"))
    assert code == 2 and "no such MLflow database" in err


# ---- degenerate evaluation sets: refused, never a promotion ----

@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(target=1), "evaluation data has a single class (1) in 'target'"),
    (lambda f: f.iloc[:29], "evaluation data has 29 rows; the gate needs at least 30"),
    (lambda f: f.assign(target=f["target"].where(f.index % 10 != 0)), "30 evaluation rows have no label in 'target'"),
    (lambda f: f.assign(target=np.where(f.index % 50 == 0, 7, f["target"])), "labels the models never saw in 'target': 7"),
    (lambda f: f.assign(x0=np.where(f.index == 3, np.nan, f["x0"])),
     "the champion model cannot score the evaluation data (ValueError: Input X contains NaN"),
])
def test_a_degenerate_evaluation_set_is_refused(change, message):
    """A classifier judged on one class, on a handful of rows, on labels it cannot predict or on data it
    cannot score would give a meaningless interval: the gate refuses, so nothing is promoted on it."""
    champion = FIT.fit(make_frame(500, 1), FEATURES, "target", "binary")
    challenger = FIT.fit(make_frame(500, 2), FEATURES, "target", "binary")
    with pytest.raises(GateError, match=re.escape(message)) as raised:
        evaluate_gate("binary", champion, challenger, change(make_frame(300, 3)), FEATURES)
    assert "\n" not in str(raised.value)


def test_a_regression_target_that_is_not_numbers_is_refused():
    frame = make_frame(300, 3).assign(target=lambda f: f["x0"] * 2)
    model = FIT.fit(frame, FEATURES, "target", "regression")
    with pytest.raises(GateError, match="the regression target 'target' holds values that are not finite numbers"):
        evaluate_gate("regression", model, model, frame.assign(target=np.where(frame.index == 5, np.inf,
                                                                               frame["target"])), FEATURES)


def test_gate_command_refuses_a_one_class_set(versions, tracking_uri, tmp_path, capsys):
    make_frame(300, 50).assign(target=0).to_parquet(tmp_path / "one_class.parquet")
    code, out, err = gate(capsys, "--tracking-uri", tracking_uri, "--model", MODEL, "--candidate", "2",
                          "--data", str(tmp_path / "one_class.parquet"))
    assert (code, out) == (2, "") and err.count("\n") == 1 and "a single class (0)" in err
