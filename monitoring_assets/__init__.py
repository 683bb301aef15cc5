"""The monitoring graph: an asset per noun of the design (profile, window, drift, metrics, health)."""

from monitoring_assets.evaluation import evaluate_models
from monitoring_assets.external import inference_log, labels
from monitoring_assets.jobs import evaluate_window_job, profile_job, refresh_labels_job, scorecard_job
from monitoring_assets.reference import reference_profile
from monitoring_assets.retraining import retrain_model
from monitoring_assets.scorecard import model_scorecard

ASSETS = [inference_log, labels, reference_profile, evaluate_models, model_scorecard]
JOBS = [profile_job, evaluate_window_job, refresh_labels_job, scorecard_job, retrain_model]
