"""A challenger version: fitted, logged to MLflow like a training run, registered as `challenger`.

The run logs the same reference artifacts as any Watchkeeper-trained version
(reference/train.parquet and reference/validation.parquet, label column "target"), so
once the challenger is promoted, the registry sensor profiles it with the existing code.
Its validation frame is the recent held-out evaluation set, so the bar its windows are
held to is its performance on the traffic it was promoted for.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import mlflow
import mlflow.data
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from watchkeeper.performance import REGRESSION, MetricValue, compute_metrics
from watchkeeper.registry import REFERENCE_TARGET, TRAIN_ARTIFACT, VALIDATION_ARTIFACT, Champion, Registry
from watchkeeper.retraining.trainers import fit_checked, load_trainer, trusted_types
from watchkeeper.retraining.training_set import features_of
from watchkeeper.security.sealed_files import write_parquet
from watchkeeper.security import residency

CHALLENGER = "challenger"
TRAINED_FROM_TAG = "watchkeeper.trained_from"
ACTION_TAG = "watchkeeper.action"   # what made the version: RETRAIN or RECALIBRATE
RETRAIN, RECALIBRATE = "retrain", "recalibrate"


class ChallengerError(ValueError):
    """The model or its frames cannot make a challenger; one line."""


@dataclass(frozen=True)
class Challenger:
    name: str
    version: str
    run_id: str
    metrics: dict[str, MetricValue]   # on the evaluation set

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "run_id": self.run_id,
                "metrics": {name: m.to_dict() for name, m in self.metrics.items()}}


def champion_of(registry: Registry, model_name: str) -> Champion:
    champion = registry.champions().get(model_name)
    if champion is None:
        raise ChallengerError(f"model {model_name!r} has no champion in the registry at {registry.tracking_uri}")
    return champion


def predictions(estimator: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None, list | None]:
    """(predicted labels/values, class probabilities or None, classes or None), as monitoring computes them."""
    if task == REGRESSION:
        return estimator.predict(X), None, None
    return estimator.predict(X), estimator.predict_proba(X), [c.item() if hasattr(c, "item") else c
                                                                for c in estimator.classes_]


def _evaluation_metrics(estimator: Any, frame: pd.DataFrame, task: str) -> dict[str, MetricValue]:
    predicted, proba, classes = predictions(estimator, frame[features_of(frame)], task)
    values = compute_metrics(task, frame[REFERENCE_TARGET], predicted, proba, classes)
    return {m.name: m for m in values}


def retrain(registry_uri: str, model_name: str, trainer_name: str, train_df: pd.DataFrame,
            eval_df: pd.DataFrame, trainer_params: dict | None = None) -> Challenger:
    """Fit the configured trainer on `train_df` and register the result as the challenger."""
    registry = Registry(registry_uri)
    champion = champion_of(registry, model_name)
    params = trainer_params or {}
    trainer = load_trainer(trainer_name, **params)
    estimator = fit_checked(trainer, train_df, features_of(train_df), REFERENCE_TARGET, champion.task)
    return register_challenger(registry, champion, estimator, train_df, eval_df, RETRAIN,
                               {"trainer": trainer_name, **params}, trusted_types(trainer))


def register_challenger(registry: Registry, champion: Champion, estimator: Any, train: pd.DataFrame,
                        evaluation: pd.DataFrame, action: str, params: dict,
                        trusted: Sequence[str] = ()) -> Challenger:
    """Log a run in the champion's experiment and register its model as a new version aliased `challenger`.

    MLflow stores sklearn models with skops, which refuses to load types it does not know
    to be safe; `trusted` names the ones the model's author has reviewed (see trainers).
    """
    features = features_of(train)
    if features_of(evaluation) != features:
        raise ChallengerError("training and evaluation frames have different columns")
    metrics = _evaluation_metrics(estimator, evaluation, champion.task)
    experiment_id = registry.client.get_run(champion.run_id).info.experiment_id
    mlflow.set_tracking_uri(registry.tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{champion.name}-{action}") as run:
        residency.check(residency.ROWS, "MLflow artifacts", run.info.artifact_uri)   # before any row is logged
        mlflow.log_params({**params, "action": action, "task": champion.task, "trained_from": champion.version,
                           "estimator": type(estimator).__name__, "n_train": len(train),
                           "n_validation": len(evaluation)})
        mlflow.log_metrics(_flat(metrics))
        log_reference(champion.name, train, evaluation)
        info = _log_model(estimator, train[features], champion.name, trusted)
    version = str(info.registered_model_version)
    registry.client.set_model_version_tag(champion.name, version, TRAINED_FROM_TAG, champion.version)
    registry.client.set_model_version_tag(champion.name, version, ACTION_TAG, action)
    registry.client.set_registered_model_alias(champion.name, CHALLENGER, version)
    return Challenger(champion.name, version, run.info.run_id, metrics)


def _log_model(estimator: Any, X: pd.DataFrame, name: str, trusted: Sequence[str]):
    try:
        return mlflow.sklearn.log_model(estimator, name="model", signature=infer_signature(X, estimator.predict(X)),
                                        pip_requirements=["scikit-learn"], registered_model_name=name,
                                        skops_trusted_types=list(trusted) or None)
    except MlflowException as error:   # e.g. untrusted types: MLflow's message is a page; its first line says which
        raise ChallengerError(f"{name}: cannot log the model: {str(error.message).splitlines()[0]}") from error


def log_reference(model_name: str, train: pd.DataFrame, validation: pd.DataFrame) -> None:
    """Reference frames as artifacts of the active run (where `Registry.reference_frames` reads them),
    and as MLflow dataset inputs pointing at those artifacts."""
    with tempfile.TemporaryDirectory() as tmp:
        for artifact, frame, context in ((TRAIN_ARTIFACT, train, "training"),
                                         (VALIDATION_ARTIFACT, validation, "validation")):
            path = Path(tmp) / Path(artifact).name
            write_parquet(frame, path)   # training rows: encrypted in the artifact store too
            mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))
            dataset = mlflow.data.from_pandas(frame, source=mlflow.get_artifact_uri(artifact),
                                              targets=REFERENCE_TARGET, name=f"{model_name}-{path.stem}")
            mlflow.log_input(dataset, context=context)


def _flat(metrics: dict[str, MetricValue]) -> dict[str, float]:
    """MLflow metrics: each value and its interval bounds, leaving out what could not be computed."""
    flat = {}
    for m in metrics.values():
        flat |= {key: value for key, value in ((m.name, m.value), (f"{m.name}_lower", m.lower),
                                                (f"{m.name}_upper", m.upper)) if value is not None}
    return flat
