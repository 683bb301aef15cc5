"""The Watchkeeper code location: assembles assets, jobs, sensors and resources.

Every resource reads its address from the environment (WATCHKEEPER_* variables, set by
`make demo` for the embedded default), so nothing here depends on where it runs; so does the
executor (WATCHKEEPER_EXECUTOR=celery on the production profile, docs/scale.md).
"""

import warnings
from pathlib import Path

import dagster as dg

from monitoring_assets import ASSETS, JOBS
from monitoring_assets.execution import executor_from_environment
from resources import (
    AlertingResource, FeastResource, InferenceLogResource, MlflowRegistryResource, MonitoringConfigResource,
    MonitoringStoreResource,
)
from sensors import SENSORS

OWNERS = ["team:ml-platform"]   # who answers for the monitoring graph; shown on every asset


def _policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Cross-cutting metadata applied in one place rather than on each asset."""
    return spec.merge_attributes(owners=OWNERS, tags={"domain": "model-monitoring"})


# Dagster warns about its own internals at every load of the location (and the server log repeats
# it for each process): map_asset_specs is a preview API, and resolving a sensor's jobs passes the
# beta `owners` parameter on. Neither is something this project can act on.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition.__init__`",
                        category=dg.BetaWarning)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions(
        assets=ASSETS,
        jobs=JOBS,
        sensors=SENSORS,
        executor=executor_from_environment(),
        resources={
            "mlflow_registry": MlflowRegistryResource(tracking_uri=dg.EnvVar("WATCHKEEPER_MLFLOW_URI")),
            "monitoring_store": MonitoringStoreResource(url=dg.EnvVar("WATCHKEEPER_STORE_URL")),
            "drop_folder": InferenceLogResource(root=dg.EnvVar("WATCHKEEPER_DATA_DIR")),
            "alerting": AlertingResource(policy_path=dg.EnvVar("WATCHKEEPER_ALERT_POLICY")),
            "monitoring_config": MonitoringConfigResource(path=str(Path(__file__).parent / "deploy" / "monitoring.yaml")),
            "feature_store": FeastResource(),   # WATCHKEEPER_FEAST_REPO, when models take features from Feast
        },
    ).map_asset_specs(func=_policy)
