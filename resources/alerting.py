import dagster as dg

from watchkeeper.alerting.policy import Policy, load_policy


class AlertingResource(dg.ConfigurableResource):
    """The routing and escalation policy (a reviewed YAML file) and the links alerts carry."""

    policy_path: str
    dagster_url: str = "http://127.0.0.1:3000"
    mlflow_url: str = ""

    def policy(self) -> Policy:
        return load_policy(self.policy_path)
