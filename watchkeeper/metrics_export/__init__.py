"""Prometheus metrics from the monitoring store, for dashboards and alerting rules.

`StoreCollector` reads the store at scrape time, newest window per model only, so the
number of series is bounded by models x features (not by history); `PipelineCollector`
reports how long the evaluation runs take; `serve` answers /metrics; `push_metrics`
sends a registry to a Pushgateway for runs too short-lived to be scraped.
docs/observability.md lists every series and its cardinality bound.
"""

from watchkeeper.metrics_export.collector import StoreCollector
from watchkeeper.metrics_export.exposition import Gauge, render, serve
from watchkeeper.metrics_export.pipeline import PipelineCollector, RunTiming
from watchkeeper.metrics_export.push import push_metrics

__all__ = ["Gauge", "PipelineCollector", "RunTiming", "StoreCollector", "push_metrics", "render", "serve"]
