"""One retraining cycle for one model: recent labels -> challenger -> gate -> promotion.

This is what the `retrain_model` job runs. The cheaper action comes first, by policy:
when the inputs are stable (no data drift) but the champion's probabilities have lost
their calibration on recent labels, a recalibrated champion is offered to the gate; only
if that does not win is a full retrain done. Both attempts are judged on the same
held-out recent rows, so their decisions are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from watchkeeper.flavors import NO_PROBABILITIES, ScoringModel
from watchkeeper.inference_log import InferenceLog
from watchkeeper.performance import METRIC_NAMES, REGRESSION
from watchkeeper.registry import REFERENCE_TARGET, Champion, Registry
from watchkeeper.retraining.calibration import METHODS, TRUSTED_TYPES, calibration_drifted, recalibrate
from watchkeeper.retraining.challenger import (
    RECALIBRATE, RETRAIN, Challenger, champion_of, predictions, register_challenger, retrain,
)
from watchkeeper.retraining.gate import (
    AUTO,
    NEEDS_APPROVAL,
    PROMOTED,
    REJECTED,
    TICKET,
    GateDecision,
    apply_decision,
    evaluate_gate,
)
from watchkeeper.retraining.trainers import available_trainers, sklearn_logger
from watchkeeper.retraining.training_set import (
    AUTO as AUTO_TRAINING_SET, HOLDOUT_FRACTION, TRAINING_SETS, features_of, holdout_split, recent_labelled_rows,
    training_rows, uses_recent_only,
)
from watchkeeper.security.audit import APPROVAL_REQUESTED, GATE, RETRAINED, Actor
from watchkeeper.security.audit import PROMOTED as PROMOTED_ENTRY
from watchkeeper.store import MonitoringStore


class PolicyError(ValueError):
    """A retraining configuration that cannot work; raised before anything is trained or registered."""


@dataclass(frozen=True)
class RetrainPolicy:
    """A model's retraining configuration: how to train, and what a challenger must show to be promoted."""

    trainer: str = "sklearn_pipeline"
    trainer_params: dict = field(default_factory=dict)
    metric: str | None = None            # None: the task's primary metric
    margin: float = 0.0                  # absolute for scores, relative for error metrics (see gate)
    confidence: float = 0.95
    approval: str = AUTO                 # "auto" promotes; "ticket" waits for a person
    recalibrate_first: bool = True
    calibration_method: str = "isotonic"
    holdout_fraction: float = HOLDOUT_FRACTION
    training_set: str = AUTO_TRAINING_SET   # auto: recent rows only under concept drift, else reference + recent

    def __post_init__(self) -> None:
        if self.training_set not in TRAINING_SETS:
            raise PolicyError(f"training_set must be one of {list(TRAINING_SETS)}, got {self.training_set!r}")
        if self.approval not in (AUTO, TICKET):
            raise PolicyError(f"approval must be {AUTO!r} or {TICKET!r}, got {self.approval!r}")
        if self.calibration_method not in METHODS:
            raise PolicyError(f"calibration_method must be one of {list(METHODS)}, got {self.calibration_method!r}")
        if not (0 < self.confidence < 1 and 0 < self.holdout_fraction < 1):
            raise PolicyError(f"confidence and holdout_fraction must lie in (0, 1), got {self.confidence} "
                              f"and {self.holdout_fraction}")


@dataclass(frozen=True)
class Attempt:
    action: str                # RECALIBRATE | RETRAIN
    challenger: Challenger
    decision: GateDecision
    status: str                # promoted | needs_approval | rejected

    def to_dict(self) -> dict:
        return {"action": self.action, "challenger": self.challenger.to_dict(),
                "decision": self.decision.to_dict(), "status": self.status}


@dataclass(frozen=True)
class RetrainOutcome:
    model: str
    trained_from: str                   # the champion version the cycle started from
    calibration: dict | None            # the calibration test's evidence, when it ran
    attempts: tuple[Attempt, ...]
    training_set: str = "reference_and_recent"   # what a retrain learned from: reference_and_recent | recent_only

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    def to_dict(self) -> dict:
        return {"model": self.model, "trained_from": self.trained_from, "calibration": self.calibration,
                "training_set": self.training_set,
                "status": self.final.status, "challenger_version": self.final.challenger.version,
                "attempts": [a.to_dict() for a in self.attempts]}


def run_retraining(registry: Registry, log: InferenceLog, model_name: str, windows: list[str],
                   policy: RetrainPolicy = RetrainPolicy(), inputs_stable: bool = False,
                   concept_drift: bool = False) -> RetrainOutcome:
    """Retrain `model_name` on the labelled rows of `windows` (with its reference data unless the
    policy says recent rows only, which `auto` does under concept drift), and gate the result.

    `inputs_stable` is the caller's knowledge that the windows showed no data drift (the
    model_health verdict); only then is recalibration considered. `concept_drift`: the windows'
    verdicts raised concept drift.
    """
    champion = champion_of(registry, model_name)
    _check_policy(policy, champion)
    reference, validation = registry.reference_frames(champion)
    recent, evaluation = holdout_split(recent_labelled_rows(log, model_name, windows, features_of(reference)),
                                       policy.holdout_fraction)
    champion_model = registry.load_model(champion)
    calibration, attempts = None, []
    if policy.recalibrate_first and inputs_stable and champion.task != REGRESSION:
        calibration, attempt = _try_recalibration(registry, champion, champion_model, (reference, validation),
                                                  recent, evaluation, policy)
        if attempt is not None:
            attempts.append(attempt)
            if attempt.status != REJECTED:
                return RetrainOutcome(model_name, str(champion.version), calibration, tuple(attempts))
    challenger = retrain(registry.tracking_uri, model_name, policy.trainer,
                         training_rows(reference, recent, policy.training_set, concept_drift), evaluation,
                         policy.trainer_params)
    attempts.append(_judge(registry, champion, champion_model, challenger, evaluation, RETRAIN, policy))
    used = "recent_only" if uses_recent_only(policy.training_set, concept_drift) else "reference_and_recent"
    return RetrainOutcome(model_name, str(champion.version), calibration, tuple(attempts), used)


def _check_policy(policy: RetrainPolicy, champion: Champion) -> None:
    """What the policy cannot know until the model's task is known; checked before any work."""
    if policy.metric is not None and policy.metric not in METRIC_NAMES[champion.task]:
        raise PolicyError(f"metric {policy.metric!r} does not apply to {champion.task} model {champion.name!r}")
    if policy.trainer not in available_trainers():
        raise PolicyError(f"unknown trainer {policy.trainer!r}; available: {', '.join(available_trainers())}")


def _try_recalibration(registry: Registry, champion: Champion, champion_model: ScoringModel,
                       reference_frames: tuple[pd.DataFrame, pd.DataFrame], recent: pd.DataFrame,
                       evaluation: pd.DataFrame, policy: RetrainPolicy) -> tuple[dict, Attempt | None]:
    """(the calibration test's evidence, the gated recalibrated challenger if calibration drifted).

    Calibration is compared with the champion's own on its reference validation frame. The
    map is fitted on the recent rows the gate does not see; the version keeps the champion's
    reference training frame, since its inputs have not moved.
    """
    reference, validation = reference_frames
    features = features_of(reference)
    if not champion_model.has_proba:
        return {"skipped": NO_PROBABILITIES}, None
    _, proba, classes = predictions(champion_model, recent[features], champion.task)
    _, reference_proba, _ = predictions(champion_model, validation[features], champion.task)
    drifted, evidence = calibration_drifted(proba, recent[REFERENCE_TARGET], classes,
                                            (reference_proba, validation[REFERENCE_TARGET]))
    if not drifted:
        return evidence, None
    if not champion_model.is_sklearn:
        return {**evidence, "recalibration": f"not offered: the champion is a {champion_model.flavor} model and "
                                              "recalibration wraps scikit-learn estimators; retraining instead"}, None
    estimator = recalibrate(champion_model.native, recent[features], recent[REFERENCE_TARGET],
                            policy.calibration_method)
    challenger = register_challenger(registry, champion, estimator, reference, evaluation, RECALIBRATE,
                                     {"method": policy.calibration_method}, sklearn_logger(TRUSTED_TYPES))
    return evidence, _judge(registry, champion, champion_model, challenger, evaluation, RECALIBRATE, policy)


def _judge(registry: Registry, champion: Champion, champion_model: Any, challenger: Challenger,
           evaluation: pd.DataFrame, action: str, policy: RetrainPolicy) -> Attempt:
    """Gate the challenger as registered (loaded back from MLflow, so what is judged is what would serve)."""
    challenger_model = registry.load_model(Champion(challenger.name, challenger.version, challenger.run_id,
                                                    champion.task))
    decision = evaluate_gate(champion.task, champion_model, challenger_model, evaluation, features_of(evaluation),
                             policy.margin, policy.metric, confidence=policy.confidence)
    return Attempt(action, challenger, decision,
                   apply_decision(registry, champion.name, challenger.version, decision, policy.approval))



def audit_outcome(store: MonitoringStore, outcome: RetrainOutcome, actor: Actor) -> None:
    """Each challenger trained and its gate decision, then the promotion or the approval asked for,
    in one transaction of the audit trail."""
    final = outcome.final
    with store.transaction() as tx:
        for attempt in outcome.attempts:
            challenger = attempt.challenger
            store.audit(RETRAINED, outcome.model, actor.name, actor.run_id, outcome.model, tx=tx, details={
                "action": attempt.action, "trained_from": outcome.trained_from, "version": str(challenger.version),
                "mlflow_run_id": challenger.run_id})
            store.audit(GATE, outcome.model, actor.name, actor.run_id, outcome.model, tx=tx, details={
                "version": str(challenger.version), "status": attempt.status, "metric": attempt.decision.metric,
                "reason": attempt.decision.reason})
        if final.status in (PROMOTED, NEEDS_APPROVAL):
            store.audit(PROMOTED_ENTRY if final.status == PROMOTED else APPROVAL_REQUESTED, outcome.model, actor.name,
                        actor.run_id, outcome.model, tx=tx,
                        details={"version": str(final.challenger.version), "replaces": outcome.trained_from})
