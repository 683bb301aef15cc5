import dagster as dg

from watchkeeper.feature_store import FeastFeatures
from watchkeeper.registry import Registry


class MlflowRegistryResource(dg.ConfigurableResource):
    """The MLflow tracking server / model registry (a sqlite URI on the embedded default)."""

    tracking_uri: str

    def registry(self, features: FeastFeatures | None = None) -> Registry:
        """`features`: the Feast repository that completes reference frames of entity rows."""
        return Registry(self.tracking_uri, features)
