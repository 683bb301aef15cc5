"""The three demo models: bundled scikit-learn data, trained and registered in a real MLflow.

Everything is offline and seeded so the demo (and its drift verdicts) is reproducible.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn import datasets
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.model_selection import train_test_split

from watchkeeper.retraining.challenger import log_reference
from watchkeeper.retraining.trainers import SklearnPipelineTrainer


@dataclass(frozen=True)
class DemoModel:
    """One monitored demo model and the drift scenario the simulator plays on it."""

    name: str  # registered model name
    task: str  # "binary" | "multiclass" | "regression"
    dataset: str  # "breast_cancer" | "wine" | "diabetes"
    scenario: str  # "concept_drift" | "clean" | "covariate_shift"
    shifted_features: tuple[str, ...] = ()

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"


DEMO_MODELS = (
    DemoModel("breast_cancer_classifier", "binary", "breast_cancer", "concept_drift"),
    DemoModel("wine_classifier", "multiclass", "wine", "clean"),
    DemoModel("diabetes_regressor", "regression", "diabetes", "covariate_shift", ("bmi", "bp", "s5")),
)
TARGET = "target"
EXPERIMENT = "watchkeeper-demo"
CHAMPION = "champion"
VALIDATION_SIZE = 0.3
_LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "diabetes": datasets.load_diabetes,
}


def load_dataset(name: str) -> pd.DataFrame:
    """Bundled dataset with snake_case feature names (safe in schemas, SQL and URLs) plus TARGET."""
    frame = _LOADERS[name](as_frame=True).frame
    frame.columns = [re.sub(r"[^0-9a-z]+", "_", str(c).lower()).strip("_") for c in frame.columns]
    return frame


def quiet_mlflow() -> None:
    """MLflow, alembic and the sklearn autologging hints flood the demo output; keep warnings only."""
    for logger in ("mlflow", "alembic"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")


def _split(model: DemoModel, frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """70/30 split; stratified for classifiers so the reference keeps the class balance."""
    stratify = frame[TARGET] if model.is_classifier else None
    train, validation = train_test_split(frame, test_size=VALIDATION_SIZE, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), validation.reset_index(drop=True)


def _experiment_id(client: MlflowClient, artifact_dir: Path) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    artifact_dir.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(EXPERIMENT, artifact_location=artifact_dir.resolve().as_uri())


def _train_one(client: MlflowClient, experiment_id: str, model: DemoModel, seed: int) -> str:
    """One run: fit, log params/metrics/reference/model, register; returns the new version."""
    train, validation = _split(model, load_dataset(model.dataset), seed)
    X, y = train.drop(columns=TARGET), train[TARGET]
    pipeline = SklearnPipelineTrainer(seed=seed).pipeline(model.task).fit(X, y)   # what retraining uses too
    predicted = pipeline.predict(validation.drop(columns=TARGET))
    metrics = (
        {"accuracy": accuracy_score(validation[TARGET], predicted)}
        if model.is_classifier
        else {"mae": mean_absolute_error(validation[TARGET], predicted)}
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name=model.name):
        mlflow.log_params({"task": model.task, "dataset": model.dataset, "seed": seed,
                           "estimator": type(pipeline[-1]).__name__, "n_train": len(train),
                           "n_validation": len(validation)})
        mlflow.log_metrics(metrics)
        log_reference(model.name, train, validation)
        info = mlflow.sklearn.log_model(
            pipeline, name="model", signature=infer_signature(X, pipeline.predict(X)),
            pip_requirements=["scikit-learn"], registered_model_name=model.name,
        )
    version = str(info.registered_model_version)
    client.set_registered_model_tag(model.name, "watchkeeper.monitored", "true")
    client.set_registered_model_tag(model.name, "watchkeeper.task", model.task)
    client.set_registered_model_alias(model.name, CHAMPION, version)
    return version


def train_and_register(tracking_uri: str, artifact_dir: Path, seed: int = 0) -> dict[str, str]:
    """Train every demo model and make the new version the champion; returns {model name: version}."""
    quiet_mlflow()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = _experiment_id(client, Path(artifact_dir))
    return {model.name: _train_one(client, experiment_id, model, seed) for model in DEMO_MODELS}
