import os

import dagster as dg

from watchkeeper.alerting.policy import Policy, load_policy

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


class AlertingResource(dg.ConfigurableResource):
    """The routing and escalation policy (a reviewed YAML file) and the base URLs alert links start from.

    dagster_url: the Dagster UI as people reach it (default: $WATCHKEEPER_DAGSTER_URL, else
        http://127.0.0.1:3000). mlflow_url: the MLflow UI (default: $WATCHKEEPER_MLFLOW_UI_URL);
        without one, alerts carry no MLflow link rather than a relative one.
    """

    policy_path: str
    dagster_url: str | None = None
    mlflow_url: str | None = None

    def policy(self) -> Policy:
        return load_policy(self.policy_path)

    def dagster_base(self) -> str:
        return self.dagster_url or os.environ.get("WATCHKEEPER_DAGSTER_URL") or DEFAULT_DAGSTER_URL

    def mlflow_base(self) -> str | None:
        return self.mlflow_url or os.environ.get("WATCHKEEPER_MLFLOW_UI_URL")
