"""Dagster resources: thin, configurable handles on the real systems Watchkeeper talks to."""

from resources.alerting import AlertingResource
from resources.feature_store import FeastResource
from resources.inference_log import InferenceLogResource
from resources.mlflow_registry import MlflowRegistryResource
from resources.monitoring_config import MonitoringConfigResource
from resources.monitoring_store import MonitoringStoreResource

__all__ = ["AlertingResource", "FeastResource", "InferenceLogResource", "MlflowRegistryResource", "MonitoringConfigResource", "MonitoringStoreResource"]
