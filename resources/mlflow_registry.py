import dagster as dg

from watchkeeper.registry import Registry


class MlflowRegistryResource(dg.ConfigurableResource):
    """The MLflow tracking server / model registry (a sqlite URI on the embedded default)."""

    tracking_uri: str

    def registry(self) -> Registry:
        return Registry(self.tracking_uri)
