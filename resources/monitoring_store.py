import dagster as dg

from watchkeeper.store import MonitoringStore


class MonitoringStoreResource(dg.ConfigurableResource):
    """Where evaluation results live: a SQLite file by default, PostgreSQL at scale."""

    url: str

    def store(self) -> MonitoringStore:
        return MonitoringStore(self.url)
