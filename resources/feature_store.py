import os

import dagster as dg

from watchkeeper.feature_store import FeastFeatures

FEAST_REPO_ENV = "WATCHKEEPER_FEAST_REPO"


class FeastResource(dg.ConfigurableResource):
    """The Feast repository (a folder with feature_store.yaml) models' features come from.

    Optional: with no `repo_path` and no WATCHKEEPER_FEAST_REPO in the environment (read when
    used, not at import), there is no feature store, and only a model that names a feature
    service fails, saying so.
    """

    repo_path: str = ""

    def features(self) -> FeastFeatures | None:
        path = self.repo_path or os.environ.get(FEAST_REPO_ENV, "")
        return FeastFeatures(path) if path else None
