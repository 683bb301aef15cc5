"""How long the evaluation pipeline's runs take, from whatever orchestrator ran them.

The engine does not know Dagster, so the runs come from a callable: the `watchkeeper
exporter` command passes one that reads the Dagster instance's run records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from watchkeeper.metrics_export.exposition import Gauge


@dataclass(frozen=True)
class RunTiming:
    """One finished run: its job, final status ("success", "failure", ...) and Unix start/end times."""

    job: str
    status: str
    start: float
    end: float


class PipelineCollector(Collector):
    """Duration of each job's newest run, newest success time, and run counts by status.

    `runs` returns recently finished runs (in any order). Series are labelled by job and
    status only, so their number is bounded by the pipeline's jobs, not by its runs. The
    label is `pipeline`, not `job`, which Prometheus reserves for the scrape job.
    """

    def __init__(self, runs: Callable[[], Iterable[RunTiming]]) -> None:
        self.runs = runs

    def gauges(self) -> list[Gauge]:
        runs = sorted(self.runs(), key=lambda r: r.end)
        duration = Gauge("watchkeeper_pipeline_last_run_duration_seconds",
                         "Wall-clock duration of the job's newest finished run.", ("pipeline",))
        for job, run in {run.job: run for run in runs}.items():
            duration.add(job, run.end - run.start)
        success = Gauge("watchkeeper_pipeline_last_success_timestamp_seconds",
                        "Unix time at which the job's newest successful run ended.", ("pipeline",))
        for job, run in {run.job: run for run in runs if run.status == "success"}.items():
            success.add(job, run.end)
        counts = Gauge("watchkeeper_pipeline_recent_runs", "Recently finished runs by job and final status.",
                       ("pipeline", "status"))
        for (job, status), n in Counter((run.job, run.status) for run in runs).items():
            counts.add(job, status, n)
        return [duration, success, counts]

    def collect(self) -> Iterator[Metric]:
        return (gauge.to_metric() for gauge in self.gauges())

    def describe(self) -> list[Metric]:
        return []
