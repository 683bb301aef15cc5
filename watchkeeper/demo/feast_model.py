"""The demo's Feast-fed model: `churn_feast` reads `customer_stats` through the `churn_features` service.

Its training run logs entity rows only (customer, time, label): its reference is the point-in-time
training set Feast returns for them. Serving logs entity keys, times and predictions, never the
feature values: each window gets them from Feast. From the demo's drift day, `x0` of every
customer moves (feast_repo's shift), so its drift report names `customer_stats:x0`.
"""

from __future__ import annotations

import zlib
from datetime import date, timedelta
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from watchkeeper.demo import feast_repo
from watchkeeper.demo.models import CHAMPION, _experiment_id, quiet_mlflow
from watchkeeper.demo.simulate import DEMO_DAYS, DEMO_START, DRIFT_START_DAY
from watchkeeper.feature_store import EVENT_TIMESTAMP, FEATURE_SERVICE_TAG
from watchkeeper.registry import MONITORED_TAG, TASK_TAG
from watchkeeper.retraining.challenger import log_reference
from watchkeeper.retraining.trainers import SklearnPipelineTrainer
from watchkeeper.security.sealed_files import write_parquet

NAME = "churn_feast"
HISTORY_DAYS = 20          # feature history before the demo's first day: the reference period
ROWS_PER_DAY = 300


class FeastDemo:
    """Writes the Feast repository, registers the model, and releases its traffic day by day."""

    def __init__(self, home: Path, start: date = DEMO_START, seed: int = 0) -> None:
        self.home, self.start, self.seed = Path(home), start, seed
        self.first = start - timedelta(days=HISTORY_DAYS)
        shift_from = start + timedelta(days=DRIFT_START_DAY - 1)
        self.rows = feast_repo.feature_rows(self.first, HISTORY_DAYS + DEMO_DAYS, seed, shift_from)
        self.features = feast_repo.write_repo(self.home / "feast", self.first, HISTORY_DAYS + DEMO_DAYS, seed,
                                              shift_from)
        self.model = None

    def register(self, tracking_uri: str, artifact_dir: Path) -> str:
        """Train on the Feast training set of the history and register the champion; returns its version."""
        quiet_mlflow()
        mlflow.set_tracking_uri(tracking_uri)
        client = MlflowClient(tracking_uri=tracking_uri)
        train_rows = feast_repo.entity_rows(self.first, HISTORY_DAYS, 2000, self.seed + 1, self.rows)
        validation_rows = feast_repo.entity_rows(self.first, HISTORY_DAYS, 800, self.seed + 2, self.rows)
        train = self.features.training_set(feast_repo.SERVICE, train_rows, "target")
        columns = [c for c in train.columns if c != "target"]
        self.model = SklearnPipelineTrainer(seed=self.seed).fit(train, columns, "target", "binary")
        with mlflow.start_run(experiment_id=_experiment_id(client, Path(artifact_dir)), run_name=NAME):
            mlflow.log_params({"task": "binary", "feature_service": feast_repo.SERVICE, "n_train": len(train)})
            log_reference(NAME, train_rows, validation_rows)
            info = mlflow.sklearn.log_model(self.model, name="model", pip_requirements=["scikit-learn"],
                                            signature=infer_signature(train[columns], self.model.predict(train[columns])),
                                            registered_model_name=NAME)
        version = str(info.registered_model_version)
        for tag, value in ((MONITORED_TAG, "true"), (TASK_TAG, "binary"), (FEATURE_SERVICE_TAG, feast_repo.SERVICE)):
            client.set_registered_model_tag(NAME, tag, value)
        client.set_registered_model_alias(NAME, CHAMPION, version)
        return version

    def release_day(self, day: date) -> None:
        """The day's predictions as serving logs them (no feature values) and their labels, same day."""
        seed = [self.seed, zlib.crc32(NAME.encode()), day.toordinal()]
        rows = feast_repo.entity_rows(day, 1, ROWS_PER_DAY, int(np.random.default_rng(seed).integers(2**31)),
                                      self.rows)
        served = self.features.join(feast_repo.SERVICE, rows)
        columns = [c for c in served.columns if ":" in c]
        proba = self.model.predict_proba(served[columns])
        ids = [f"{NAME}-{day:%Y%m%d}-{i:05d}" for i in range(len(rows))]
        inference = pd.DataFrame({"timestamp": rows[EVENT_TIMESTAMP], "prediction_id": ids,
                                  feast_repo.KEY: rows[feast_repo.KEY], "prediction": self.model.predict(served[columns]),
                                  "proba_0": proba[:, 0], "proba_1": proba[:, 1]})
        labels = pd.DataFrame({"prediction_id": ids, "label": rows["target"], "arrived_at": rows[EVENT_TIMESTAMP]})
        for stream, frame in (("inference", inference), ("labels", labels)):
            write_parquet(frame, self.home / stream / NAME / f"{day:%Y-%m-%d}.parquet")   # sealed, as served rows are
