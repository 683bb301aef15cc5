"""How monitoring work is keyed.

Models are dynamic partitions (the registry sensor adds them) of the per-model assets
only: the reference profile and the scorecard, which change when a model version does.
Windows are daily partitions that each cover *every* model: one run per day evaluates
all models in one process, so Dagster's per-partition bookkeeping (55-80 ms each, see
the README) is paid once per window, not once per model per window.

The windows run from WATCHKEEPER_FIRST_WINDOW to WATCHKEEPER_LAST_WINDOW (both days included,
YYYY-MM-DD), read when the code location loads. A live deployment sets only the first day: its
windows then run to yesterday (every day has traffic, so none is missing for nothing). A replayed
history, such as the demo, also sets the last day with data, so the UI lists exactly its days
instead of every day since as "missing"; files of later days wait for their window (the inference
sensor logs them) until the range is extended.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from watchkeeper.inference_log import MAX_LABEL_DELAY_DAYS, is_day

FIRST_WINDOW, LAST_WINDOW = "WATCHKEEPER_FIRST_WINDOW", "WATCHKEEPER_LAST_WINDOW"
DEFAULT_FIRST_WINDOW = "2026-11-01"   # the demo's first day; a deployment with older windows sets its own

model_partitions = dg.DynamicPartitionsDefinition(name="models")


def window_partitions(environ: Mapping[str, str] = os.environ) -> dg.DailyPartitionsDefinition:
    """The daily windows the environment asks for; a ValueError naming the variable if it cannot be."""
    first = _day(environ, FIRST_WINDOW) or DEFAULT_FIRST_WINDOW
    last = _day(environ, LAST_WINDOW)
    if last is not None and last < first:
        raise ValueError(f"{LAST_WINDOW}={last} is before {FIRST_WINDOW}={first}: there would be no window")
    end = None if last is None else (date.fromisoformat(last) + timedelta(days=1)).isoformat()   # Dagster's end is exclusive
    return dg.DailyPartitionsDefinition(start_date=first, end_date=end, timezone="UTC")


def _day(environ: Mapping[str, str], name: str) -> str | None:
    text = environ.get(name, "").strip()
    if text and not is_day(text):
        raise ValueError(f"{name}={text[:40]!r}: expected a day like 2026-11-14 (YYYY-MM-DD)")
    return text or None


daily_windows = window_partitions()

__all__ = ["FIRST_WINDOW", "LAST_WINDOW", "MAX_LABEL_DELAY_DAYS", "daily_windows", "model_partitions",
           "window_partitions"]
