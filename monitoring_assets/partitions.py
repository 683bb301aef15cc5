"""How monitoring work is keyed.

Models are dynamic partitions (the registry sensor adds them) of the per-model assets
only: the reference profile and the scorecard, which change when a model version does.
Windows are daily partitions that each cover *every* model: one run per day evaluates
all models in one process, so Dagster's per-partition bookkeeping (55-80 ms each, see
the README) is paid once per window, not once per model per window.
"""

import dagster as dg

from watchkeeper.inference_log import MAX_LABEL_DELAY_DAYS

model_partitions = dg.DynamicPartitionsDefinition(name="models")

# The demo's first day. A deployment with older windows moves this date back.
daily_windows = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")

__all__ = ["MAX_LABEL_DELAY_DAYS", "daily_windows", "model_partitions"]
