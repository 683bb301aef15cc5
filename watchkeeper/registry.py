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
PAGE = 1000                 # entries per registry call (MLflow's sqlite and REST stores accept it)


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
        """Every monitored model's champion, and the models meant to be monitored that cannot be.

        Two paged reads whatever the fleet's size: the registered models (names, tags, aliases)
        and every model version (their runs), never one call per model per tick.
        """
        found, skipped = {}, {}
        models = self._paged(self.client.search_registered_models)
        runs: dict[str, dict[str, str]] = {}
        for version in self._paged(self.client.search_model_versions):
            runs.setdefault(version.name, {})[str(version.version)] = version.run_id
        for model in models:
            tagged = model.tags.get(MONITORED_TAG, "").lower() == "true"
            if CHAMPION not in model.aliases and not tagged:
                continue
            try:
                found[model.name] = self._champion(model, runs.get(model.name, {}))
            except (MlflowException, OSError, ValueError) as e:   # this entry only; the registry answers
                skipped[model.name] = one_line(e)
        return Monitored(found, skipped)

    def _champion(self, model, runs: dict[str, str]) -> Champion:
        """The serving version of a registered model (`runs`: its versions' runs); ValueError
        saying why it cannot be monitored."""
        problem = model_name_problem(model.name)
        task = model.tags.get(TASK_TAG, BINARY)
        if problem:
            raise ValueError(f"its name {problem}")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} in tag {TASK_TAG} (one of {', '.join(TASKS)})")
        if not runs:
            raise ValueError("it is tagged to be monitored but has no version")
        version = str(model.aliases.get(CHAMPION) or max(runs, key=int))
        if version not in runs:
            raise ValueError(f"its champion alias points at version {version}, which the registry does not list")
        return Champion(model.name, version, runs[version], task, tagged_columns(model.tags.get(SENSITIVE_TAG)))

    @staticmethod
    def _paged(search) -> list:
        """Every entry of an MLflow search, page by page (PAGE entries a call)."""
        entries, token = [], None
        while True:
            page = search(max_results=PAGE, page_token=token)
            entries.extend(page)
            token = page.token
            if not token:
                return entries

    def reference_frames(self, champion: Champion) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The training (reference) and validation frames logged with the champion's run."""
        with TemporaryDirectory() as tmp:
            frames = [read_parquet(self.client.download_artifacts(champion.run_id, path, tmp))
                      for path in (TRAIN_ARTIFACT, VALIDATION_ARTIFACT)]
        return frames[0], frames[1]

    def load_model(self, champion: Champion):
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.sklearn.load_model(f"models:/{champion.name}/{champion.version}")
