"""Trainers: what turns a training set into a fitted model, pluggable by name.

A trainer is any object with `fit(train, features, target, task) -> estimator`; the
estimator follows the scikit-learn API (`predict`, plus `classes_` and, to have
probabilities, `predict_proba` for classifiers). By default it is stored with MLflow's
sklearn flavour; a trainer for another framework also has
`log_model(estimator, X, registered_model_name) -> ModelInfo`, which stores it with that
framework's own flavour (the built-in `lightgbm` trainer does, with mlflow.lightgbm).
Whatever the flavour, monitoring loads it back through watchkeeper.flavors.

Built-in trainers are registered here. A team adds its own without forking by
declaring an entry point in the group "watchkeeper.trainers" of its own package:

    [project.entry-points."watchkeeper.trainers"]
    gradient_boosting = "acme_models.trainers:GradientBoostingTrainer"

The entry point names a class or factory; `load_trainer(name, **params)` calls it with
the model's configured params.

MLflow stores scikit-learn models with skops, which loads only types it knows to be safe.
A trainer whose estimators contain others (trees, custom classes) lists them in a
`trusted_types` attribute: the trainer's author vouches for them, once, in code review.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from watchkeeper.performance import REGRESSION, TASKS

ENTRY_POINT_GROUP = "watchkeeper.trainers"


class TrainerError(ValueError):
    """An unknown or broken trainer, or a training set it cannot use; one line."""


@runtime_checkable
class Trainer(Protocol):
    """Optionally also `trusted_types: Sequence[str]`, the skops types its estimators need."""

    def fit(self, train: pd.DataFrame, features: list[str], target: str, task: str) -> Any:
        """A fitted scikit-learn-compatible estimator for `task` on `train[features]` -> `train[target]`."""


@dataclass(frozen=True)
class SklearnPipelineTrainer:
    """Standard scaling then a linear model: logistic regression for classifiers, ridge for regression.

    The demo's champions are built by this trainer, so a retrained challenger differs from its
    champion only by the data it saw: the gate then measures the data, not a change of algorithm.
    """

    seed: int = 0
    max_iter: int = 1000

    def pipeline(self, task: str) -> Pipeline:
        if task not in TASKS:
            raise TrainerError(f"unknown task {task!r}; expected one of {list(TASKS)}")
        estimator = (Ridge() if task == REGRESSION
                     else LogisticRegression(max_iter=self.max_iter, random_state=self.seed))
        return Pipeline([("scale", StandardScaler()), ("model", estimator)])

    def fit(self, train: pd.DataFrame, features: list[str], target: str, task: str) -> Pipeline:
        return self.pipeline(task).fit(train[features], train[target])


BUILT_IN: dict[str, Callable[..., Trainer]] = {"sklearn_pipeline": SklearnPipelineTrainer}
ModelLogger = Callable[[Any, pd.DataFrame, str], Any]   # (estimator, input rows, registered name) -> ModelInfo


def available_trainers() -> list[str]:
    """Built-in names and every name installed under the entry point group."""
    return sorted(set(BUILT_IN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_trainer(name: str, **params: Any) -> Trainer:
    """The trainer called `name`, built with `params`; built-ins win over entry points of the same name."""
    factory = BUILT_IN.get(name) or _entry_point(name)
    try:
        trainer = factory(**params)
    except TypeError as error:
        raise TrainerError(f"trainer {name!r} rejected its params {sorted(params)}: {error}") from error
    if not isinstance(trainer, Trainer):
        raise TrainerError(f"trainer {name!r} built a {type(trainer).__name__}, which has no fit() method")
    return trainer


def _entry_point(name: str) -> Callable[..., Trainer]:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise TrainerError(f"unknown trainer {name!r}; available: {', '.join(available_trainers())}")
    try:
        return found[0].load()
    except Exception as error:  # a plugin's import failure is reported, whatever it raised
        raise TrainerError(f"trainer {name!r} ({found[0].value}) failed to load: "
                           f"{type(error).__name__}: {error}") from error


def trusted_types(trainer: Trainer) -> tuple[str, ...]:
    return tuple(getattr(trainer, "trusted_types", ()))


def sklearn_logger(trusted: Sequence[str] = ()) -> ModelLogger:
    """Store with MLflow's sklearn flavour (skops); `trusted` are the extra types the author reviewed."""
    def log(estimator: Any, X: pd.DataFrame, name: str) -> Any:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        return mlflow.sklearn.log_model(estimator, name="model", signature=infer_signature(X, estimator.predict(X)),
                                        pip_requirements=["scikit-learn"], registered_model_name=name,
                                        skops_trusted_types=list(trusted) or None)
    return log


def model_logger(trainer: Trainer) -> ModelLogger:
    """How the trainer's models are stored: its own `log_model`, else the sklearn flavour."""
    own = getattr(trainer, "log_model", None)
    return own if callable(own) else sklearn_logger(trusted_types(trainer))


def fit_checked(trainer: Trainer, train: pd.DataFrame, features: list[str], target: str, task: str) -> Any:
    """Fit, then check that the result can be scored the way monitoring scores it."""
    if train.empty:
        raise TrainerError("the training set is empty")
    estimator = trainer.fit(train, features, target, task)
    needed = ("predict",) if task == REGRESSION else ("predict", "classes_")
    missing = [attr for attr in needed if not hasattr(estimator, attr)]
    if missing:
        raise TrainerError(f"{type(trainer).__name__} returned a {type(estimator).__name__} without "
                           f"{', '.join(missing)}")
    return estimator
