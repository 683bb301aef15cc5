import dagster as dg

from watchkeeper.config import MonitoringConfig, load_config


class MonitoringConfigResource(dg.ConfigurableResource):
    """The reviewed thresholds file (deploy/monitoring.yaml): defaults and per-model overrides."""

    path: str

    def load(self) -> MonitoringConfig:
        return load_config(self.path)
