"""The demo's models and simulated traffic: the file contract, and drift exactly where it was planted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import ks_2samp

from watchkeeper.demo import (
    DEMO_MODELS,
    DRIFT_START_DAY,
    TARGET,
    DemoModel,
    Simulator,
    demo_days,
    load_dataset,
    train_and_register,
)

MODELS = {model.scenario: model for model in DEMO_MODELS}
DAYS = demo_days()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root}/mlflow.db"
    return tracking_uri, train_and_register(tracking_uri, root / "mlartifacts")


@pytest.fixture(scope="module")
def home(registry: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    simulator = Simulator(home, registry[0])
    for day in DAYS:
        simulator.release_day(day)
    return home


def _read(home: Path, kind: str, model: DemoModel) -> pd.DataFrame:
    """All of a model's files of one kind, with the day each file is named after."""
    files = sorted((home / kind / model.name).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f).assign(file_day=date.fromisoformat(f.stem)) for f in files],
                     ignore_index=True)


def _period(frame: pd.DataFrame, drifted: bool) -> pd.DataFrame:
    return frame[(frame["file_day"] >= DAYS[DRIFT_START_DAY - 1]) == drifted]


def _accuracy_by_day(home: Path, model: DemoModel) -> pd.Series:
    joined = _read(home, "inference", model).merge(_read(home, "labels", model), on="prediction_id",
                                                   suffixes=("", "_label"))
    return (joined["prediction"] == joined["label"]).groupby(joined["file_day"]).mean()


def _reference(registry: tuple[str, dict[str, str]], model: DemoModel, dst: Path, split: str) -> pd.DataFrame:
    """A reference frame as downstream code gets it: from the champion's run artifacts."""
    tracking_uri = registry[0]
    run_id = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(model.name, "champion").run_id
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"reference/{split}.parquet",
                                                dst_path=str(dst / model.name), tracking_uri=tracking_uri)
    return pd.read_parquet(local)


def test_registered_models_are_champions_with_reference_data(registry, tmp_path):
    tracking_uri, versions = registry
    client = MlflowClient(tracking_uri=tracking_uri)
    assert set(versions) == {model.name for model in DEMO_MODELS}
    for model in DEMO_MODELS:
        assert str(client.get_model_version_by_alias(model.name, "champion").version) == versions[model.name]
        tags = client.get_registered_model(model.name).tags
        assert tags == {"watchkeeper.monitored": "true", "watchkeeper.task": model.task}
        dataset = load_dataset(model.dataset)
        train, validation = (_reference(registry, model, tmp_path, split) for split in ("train", "validation"))
        assert list(train.columns) == list(validation.columns) == list(dataset.columns)
        assert len(train) + len(validation) == len(dataset)


def test_inference_files_follow_the_contract(home):
    for model in DEMO_MODELS:
        files = sorted((home / "inference" / model.name).glob("*.parquet"))
        assert [f.stem for f in files] == [f"{day:%Y-%m-%d}" for day in DAYS]
        features = [c for c in load_dataset(model.dataset).columns if c != TARGET]
        for f in files:
            frame = pd.read_parquet(f)
            assert list(frame.columns[:2]) == ["timestamp", "prediction_id"]
            assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
            assert frame["timestamp"].is_monotonic_increasing
            assert (frame["timestamp"].dt.date == date.fromisoformat(f.stem)).all()
            assert (frame[features].dtypes == "float64").all()
            probas = [c for c in frame.columns if c.startswith("proba_")]
            assert frame["prediction"].dtype == ("int64" if model.is_classifier else "float64")
            assert len(probas) == {"binary": 2, "multiclass": 3, "regression": 0}[model.task]
            assert list(frame.columns) == ["timestamp", "prediction_id", *features, "prediction", *probas]
        assert _read(home, "inference", model)["prediction_id"].is_unique


def test_labels_arrive_late_and_match_predictions(home):
    for model in DEMO_MODELS:
        inference, labels = _read(home, "inference", model), _read(home, "labels", model)
        assert labels["prediction_id"].is_unique
        joined = labels.merge(inference, on="prediction_id", how="left", suffixes=("", "_pred"))
        assert joined["timestamp"].notna().all()
        assert (joined["arrived_at"] >= joined["timestamp"]).all()
        assert (joined["arrived_at"].dt.date == joined["file_day"]).all()
        per_day = joined.groupby("file_day_pred").size() / inference.groupby("file_day").size()
        assert per_day[DAYS[0]] == 1.0
        assert per_day[DAYS[-1]] < 0.5


def test_covariate_shift_moves_the_shifted_features(home, registry, tmp_path):
    model = MODELS["covariate_shift"]
    inference = _read(home, "inference", model)
    before, after = _period(inference, False), _period(inference, True)
    assert ks_2samp(before["bmi"], after["bmi"]).pvalue < 1e-6
    assert after["bmi"].mean() - before["bmi"].mean() > 0.5 * before["bmi"].std()
    train = _reference(registry, model, tmp_path, "train")
    for feature in model.shifted_features:
        assert ks_2samp(before[feature], train[feature]).pvalue > 0.01


def test_concept_drift_changes_labels_not_features(home):
    model = MODELS["concept_drift"]
    inference = _read(home, "inference", model)
    before, after = _period(inference, False), _period(inference, True)
    for feature in ("worst_radius", "mean_texture", "worst_concave_points", "mean_smoothness"):
        assert ks_2samp(before[feature], after[feature]).pvalue > 0.001
    accuracy = _accuracy_by_day(home, model)
    before, after = accuracy.loc[DAYS[: DRIFT_START_DAY - 1]], accuracy.loc[DAYS[DRIFT_START_DAY - 1 :]]
    assert before.min() > 0.9
    assert before.mean() - after.mean() > 0.2


def test_clean_model_stays_accurate(home):
    assert (_accuracy_by_day(home, MODELS["clean"]) > 0.85).all()


def test_release_is_deterministic_and_idempotent(home, registry, tmp_path):
    def snapshot(paths: list[Path], root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in paths}

    original = Simulator(home, registry[0])
    again = snapshot(original.release_day(DAYS[2]), home)
    assert again and again == snapshot(original.release_day(DAYS[2]), home)
    other = Simulator(tmp_path, registry[0])
    for day in (DAYS[-1], DAYS[2]):  # out of order, in a fresh instance
        written = snapshot(other.release_day(day), tmp_path)
        assert written and written == {name: (home / name).read_bytes() for name in written}


def test_late_labels_are_released_after_the_demo_window(registry, tmp_path):
    simulator = Simulator(tmp_path, registry[0], models=(MODELS["clean"],))
    last, after = DAYS[-1], [date.fromordinal(DAYS[-1].toordinal() + i) for i in range(1, 6)]
    for day in (last, *after):
        simulator.release_day(day)
    model = MODELS["clean"]
    labels, inference = _read(tmp_path, "labels", model), _read(tmp_path, "inference", model)
    assert list(inference["file_day"].unique()) == [last]  # no predictions outside the window
    assert set(inference["prediction_id"]) <= set(labels["prediction_id"])  # every label finally arrived
    assert not (tmp_path / "labels" / model.name / f"{after[-1]:%Y-%m-%d}.parquet").exists()
