"""Sharded windows: one day of the fleet as several runs, each evaluating a slice of the models.

The window assets stay daily partitions (one partition per day, whatever the fleet's size:
Dagster's bookkeeping costs 55-80 ms per materialised partition, so a model x day partition
would cost a 10,000-model fleet ten minutes a day before any statistics). A shard is chosen by
run config (`evaluate_models: {shard, shards}`, watchkeeper.shards hashes model names), and each
shard run carries a `watchkeeper/shard` tag that the run queue limits on and the UI filters on.
Every shard run materialises the day's partition with its own models' rows, so the partition's
history lists each model's window, verdict and failure, run by run.

Sensors fan each day out into `shards` run requests; `watchkeeper fleet submit` does the same for
a range of days (a backfill) through a running webserver. The default, one shard, is the
embedded profile's single run per day, unchanged.
"""

from __future__ import annotations

import os

import dagster as dg

from watchkeeper.shards import Shard, all_shards

SHARD_TAG = "watchkeeper/shard"        # "2/8": which slice of the fleet a run evaluates
WINDOW_TAG = "watchkeeper/window"      # the day: the queue can limit concurrent runs per day
EVALUATE_OP = "evaluate_models"
SHARDS_VARIABLE = "WATCHKEEPER_SHARDS"


class ShardConfig(dg.Config):
    """Which slice of the fleet one run evaluates; the defaults are the whole fleet."""

    shard: int = 0
    shards: int = 1

    def to_shard(self) -> Shard:
        return Shard(self.shard, self.shards)


def shard_run_config(shard: Shard) -> dict:
    return {"ops": {EVALUATE_OP: {"config": {"shard": shard.index, "shards": shard.count}}}}


def shard_tags(day: str, shard: Shard) -> dict[str, str]:
    return {SHARD_TAG: shard.label(), WINDOW_TAG: day}


def shard_requests(job_name: str, day: str, run_key: str, shards: int) -> list[dg.RunRequest]:
    """One run request per shard of `day`; with one shard, the plain request of the embedded profile."""
    if shards == 1:
        return [dg.RunRequest(job_name=job_name, partition_key=day, run_key=run_key)]
    return [dg.RunRequest(job_name=job_name, partition_key=day, run_key=f"{run_key}#{shard.label()}",
                          run_config=shard_run_config(shard), tags=shard_tags(day, shard))
            for shard in all_shards(shards)]


def shards_from_environment() -> int:
    """WATCHKEEPER_SHARDS (default 1), read when a sensor ticks rather than when the code location
    loads: the same image runs one shard on a laptop and many on a cluster."""
    text = os.environ.get(SHARDS_VARIABLE, "1").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{SHARDS_VARIABLE}={text[:40]!r}: expected a whole number of shards >= 1")
    return int(text)
