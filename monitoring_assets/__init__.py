"""The monitoring graph: an asset per noun of the design (profile, window, drift, metrics, health)."""

from monitoring_assets.concept import concept_drift
from monitoring_assets.drift import drift_report
from monitoring_assets.external import inference_log, labels
from monitoring_assets.health import model_health
from monitoring_assets.jobs import evaluate_window_job, profile_job, refresh_labels_job, scorecard_job
from monitoring_assets.performance import performance_metrics
from monitoring_assets.reference import reference_profile
from monitoring_assets.retraining import retrain_model
from monitoring_assets.scorecard import model_scorecard
from monitoring_assets.windows import production_window

ASSETS = [inference_log, labels, reference_profile, production_window, drift_report, performance_metrics,
          concept_drift, model_health, model_scorecard]
JOBS = [profile_job, evaluate_window_job, refresh_labels_job, scorecard_job, retrain_model]
