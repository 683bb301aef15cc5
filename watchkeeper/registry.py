"""The MLflow model registry as Watchkeeper sees it: which models to watch, and their data.

A model is monitored when it has the `champion` alias (or the monitoring tag); its
reference data is what the training run logged under `reference/`. A registry entry that
cannot be monitored as it is (a name that cannot be a partition key, no version, an unknown
task, an entry that cannot be read) is left out with its reason, so it stops no other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from tempfile import TemporaryDirectory

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from watchkeeper.frames import read_parquet
from watchkeeper.messages import one_line
from watchkeeper.names import model_name_problem
from watchkeeper.performance import BINARY, TASKS
from watchkeeper.privacy.sensitive import SENSITIVE_TAG, tagged_columns

from watchkeeper.reference import TARGET
from watchkeeper.security import residency

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
    sensitive: frozenset[str] = frozenset()     # columns named by the registered model's sensitive tag


@dataclass(frozen=True)
class Monitored:
    champions: dict[str, Champion]      # model -> the version currently serving
    skipped: dict[str, str]             # registered model that should be monitored -> why it cannot be


class Registry:
    def __init__(self, tracking_uri: str) -> None:
        residency.check(residency.AGGREGATES, "MLflow tracking", tracking_uri)
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def champions(self) -> dict[str, Champion]:
        """Every monitored model and the version currently serving (its champion)."""
        return self.monitored().champions

    def monitored(self) -> Monitored:
        """Every monitored model's champion, and the models meant to be monitored that cannot be."""
        found, skipped = {}, {}
        for model in self._registered_models():
            tagged = model.tags.get(MONITORED_TAG, "").lower() == "true"
            if CHAMPION not in model.aliases and not tagged:
                continue
            try:
                found[model.name] = self._champion(model)
            except (MlflowException, OSError, ValueError) as e:   # this entry only; the registry answers
                skipped[model.name] = one_line(e)
        return Monitored(found, skipped)

    def _champion(self, model) -> Champion:
        """The serving version of a registered model; ValueError saying why it cannot be monitored."""
        problem = model_name_problem(model.name)
        task = model.tags.get(TASK_TAG, BINARY)
        if problem:
            raise ValueError(f"its name {problem}")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} in tag {TASK_TAG} (one of {', '.join(TASKS)})")
        version = str(model.aliases.get(CHAMPION) or self._newest_version(model.name))
        return Champion(model.name, version, self.client.get_model_version(model.name, version).run_id, task,
                        tagged_columns(model.tags.get(SENSITIVE_TAG)))

    def _newest_version(self, name: str) -> str:
        versions = self.client.search_model_versions(f"name='{name}'")
        if not versions:
            raise ValueError("it is tagged to be monitored but has no version")
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
            frames = [read_parquet(self.client.download_artifacts(champion.run_id, path, tmp))
                      for path in (TRAIN_ARTIFACT, VALIDATION_ARTIFACT)]
        return frames[0], frames[1]

    def load_model(self, champion: Champion):
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.sklearn.load_model(f"models:/{champion.name}/{champion.version}")
