"""A Prometheus collector that reads the monitoring store at scrape time.

Reading at scrape time (instead of keeping gauges updated by the pipeline) means the
exporter holds no state and needs no hook in the Dagster runs: whatever the store says
is what Prometheus sees, whichever process wrote it, and every scrape costs the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import sqlalchemy as sa
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from watchkeeper.metrics_export.exposition import Gauge
from watchkeeper.metrics_export.families import (
    alert_families,
    drift_families,
    freshness_families,
    health_families,
    performance_families,
)
from watchkeeper.metrics_export.store_reader import read_snapshot


class StoreCollector(Collector):
    """Newest window of every model in the store, as gauges.

    Parameters
    ----------
    store_url : SQLAlchemy URL of the monitoring store (SQLite file or PostgreSQL).
    max_features_per_model : drift series per model are capped at this many features,
        drifted ones first and then by effect size, which keeps their number at most
        models x max_features_per_model however wide a model's input is. The count of
        drifted features is always exported uncapped.
    clock : the current time, for freshness (tests pass a fixed one).
    """

    def __init__(self, store_url: str, max_features_per_model: int = 50,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        if max_features_per_model < 1:
            raise ValueError(f"max_features_per_model must be at least 1, got {max_features_per_model}")
        self.store_url = store_url
        self.max_features_per_model = max_features_per_model
        self.clock = clock
        self.engine_ = sa.create_engine(store_url)

    def gauges(self) -> list[Gauge]:
        started = time.perf_counter()
        snapshot = read_snapshot(self.engine_)
        gauges = [*health_families(snapshot), *performance_families(snapshot),
                  *drift_families(snapshot, self.max_features_per_model),
                  *freshness_families(snapshot, self.clock()), *alert_families(snapshot)]
        elapsed = Gauge("watchkeeper_exporter_read_seconds", "Seconds this scrape spent reading the store "
                        "and building its series (rendering not included).")
        elapsed.add(time.perf_counter() - started)
        return [*gauges, elapsed]

    def collect(self) -> Iterator[Metric]:
        """The same gauges as prometheus_client families, for a registry or the Pushgateway."""
        return (gauge.to_metric() for gauge in self.gauges())

    def describe(self) -> list[Metric]:
        """Nothing: registering must not query the store (it may not be reachable yet)."""
        return []
