"""Offline demo: three scikit-learn models in MLflow and a simulator of their production traffic."""

from watchkeeper.demo.models import DEMO_MODELS, TARGET, DemoModel, load_dataset, train_and_register
from watchkeeper.demo.simulate import DEMO_DAYS, DEMO_START, DRIFT_START_DAY, Simulator, demo_days

__all__ = [
    "DEMO_DAYS",
    "DEMO_MODELS",
    "DEMO_START",
    "DRIFT_START_DAY",
    "TARGET",
    "DemoModel",
    "Simulator",
    "demo_days",
    "load_dataset",
    "train_and_register",
]
