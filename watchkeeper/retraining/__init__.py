"""Closing the loop: retrain (or recalibrate) a model on recent labels, and promote it only
when it beats the champion beyond the noise of its evaluation sample.

Modules: `training_set` (what a challenger learns from and is judged on), `trainers`
(pluggable fitting, entry point group "watchkeeper.trainers"), `challenger` (MLflow run,
new version, alias `challenger`), `calibration` (calibration drift and recalibration),
`gate` (paired-bootstrap comparison, promotion by policy), `cycle` (one retraining cycle,
what the retrain_model job runs).
"""

from watchkeeper.retraining.calibration import calibration_drifted, recalibrate
from watchkeeper.retraining.challenger import CHALLENGER, Challenger, register_challenger, retrain
from watchkeeper.retraining.cycle import PolicyError, RetrainOutcome, RetrainPolicy, run_retraining
from watchkeeper.retraining.gate import (
    NEEDS_APPROVAL, PREVIOUS_CHAMPION, PROMOTED, REJECTED, GateDecision, apply_decision, evaluate_gate, promote,
)
from watchkeeper.retraining.trainers import Trainer, available_trainers, load_trainer
from watchkeeper.retraining.training_set import build_training_set

__all__ = [
    "CHALLENGER", "NEEDS_APPROVAL", "PREVIOUS_CHAMPION", "PROMOTED", "REJECTED", "Challenger", "GateDecision",
    "PolicyError",
    "RetrainOutcome", "RetrainPolicy", "Trainer", "apply_decision", "available_trainers", "build_training_set",
    "calibration_drifted", "evaluate_gate", "load_trainer", "promote", "recalibrate", "register_challenger",
    "retrain", "run_retraining",
]
