import dagster as dg

from watchkeeper.inference_log import InferenceLog


class InferenceLogResource(dg.ConfigurableResource):
    """The Parquet drop folder where serving writes predictions and labels land."""

    root: str

    def log(self) -> InferenceLog:
        return InferenceLog(self.root)
