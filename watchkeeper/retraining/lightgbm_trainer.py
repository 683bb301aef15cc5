"""A gradient-boosting trainer whose models are stored with LightGBM's own MLflow flavour.

It is installed through the same entry point group as any team's trainer
("watchkeeper.trainers", see pyproject.toml), so it is also the worked example of a
trainer for another framework: `fit` returns LightGBM's scikit-learn-API model (it has
`classes_` and `predict_proba`), and `log_model` stores it with `mlflow.lightgbm` in the
skops format MLflow trusts for LightGBM's own types, never as a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from watchkeeper.performance import REGRESSION


@dataclass(frozen=True)
class LightGBMTrainer:
    """LGBMClassifier or LGBMRegressor with small, seeded defaults (monitoring data is small)."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 10
    seed: int = 0

    def fit(self, train: pd.DataFrame, features: list[str], target: str, task: str) -> Any:
        import lightgbm as lgb

        kind = lgb.LGBMRegressor if task == REGRESSION else lgb.LGBMClassifier
        model = kind(n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                     min_child_samples=self.min_child_samples, random_state=self.seed, n_jobs=1, verbose=-1)
        return model.fit(train[features], train[target])

    def log_model(self, estimator: Any, X: pd.DataFrame, registered_model_name: str) -> Any:
        import mlflow.lightgbm
        from mlflow.models import infer_signature

        return mlflow.lightgbm.log_model(estimator, name="model", signature=infer_signature(X, estimator.predict(X)),
                                         pip_requirements=["lightgbm"], registered_model_name=registered_model_name)
