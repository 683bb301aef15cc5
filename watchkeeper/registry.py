"""The MLflow model registry as Watchkeeper sees it: which models to watch, and their data.

A model is monitored when it has the `champion` alias (or the monitoring tag); its
reference data is what the training run logged under `reference/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import mlflow
import pandas as pd
from mlflow import MlflowClient

from watchkeeper.reference import TARGET

MONITORED_TAG = "watchkeeper.monitored"
TASK_TAG = "watchkeeper.task"
CHAMPION = "champion"
TRAIN_ARTIFACT, VALIDATION_ARTIFACT = "reference/train.parquet", "reference/validation.parquet"
REFERENCE_TARGET = TARGET   # the label column of the reference frames


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str
    task: str


class Registry:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def champions(self) -> dict[str, Champion]:
        """Every monitored model and the version currently serving (its champion)."""
        found = {}
        for model in self._registered_models():
            tagged = model.tags.get(MONITORED_TAG, "").lower() == "true"
            if CHAMPION not in model.aliases and not tagged:
                continue
            version = str(model.aliases.get(CHAMPION) or self._newest_version(model.name))
            details = self.client.get_model_version(model.name, version)
            found[model.name] = Champion(model.name, version, details.run_id, model.tags.get(TASK_TAG, "binary"))
        return found

    def _newest_version(self, name: str) -> str:
        versions = self.client.search_model_versions(f"name='{name}'")
        return str(max(int(v.version) for v in versions))

    def _registered_models(self) -> list:
        models, token = [], None
        while True:
            page = self.client.search_registered_models(max_results=500, page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                return models

    def reference_frames(self, champion: Champion) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The training (reference) and validation frames logged with the champion's run."""
        with TemporaryDirectory() as tmp:
            frames = [pd.read_parquet(self.client.download_artifacts(champion.run_id, path, tmp))
                      for path in (TRAIN_ARTIFACT, VALIDATION_ARTIFACT)]
        return frames[0], frames[1]

    def load_model(self, champion: Champion):
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.sklearn.load_model(f"models:/{champion.name}/{champion.version}")
