"""The units of work the sensors launch: small selections of the asset graph."""

import dagster as dg

from monitoring_assets import concept, drift, health, performance, windows
from monitoring_assets.partitions import daily_windows
from monitoring_assets.reference import reference_profile
from monitoring_assets.scorecard import model_scorecard

profile_job = dg.define_asset_job(
    "profile_model", selection=[reference_profile],
    description="Profile a model's champion version (started by the registry sensor).")

evaluate_window_job = dg.define_asset_job(
    "evaluate_window", selection=[windows.SPEC.key, drift.SPEC.key, performance.SPEC.key, concept.SPEC.key, health.SPEC.key],
    partitions_def=daily_windows,
    description="Evaluate one day's window for every monitored model (started when predictions land).")

refresh_labels_job = dg.define_asset_job(
    "refresh_labels", selection=[performance.SPEC.key, health.SPEC.key], partitions_def=daily_windows,
    description="Recompute a window's realised metrics and verdict when late labels land.")

scorecard_job = dg.define_asset_job(
    "refresh_scorecard", selection=[model_scorecard],
    description="Redraw a model's history of windows (started for models model_health flags).")
