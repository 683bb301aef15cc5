"""A synthetic fleet: N models of 20 features with one day of traffic each, a few of them drifted.

Why synthetic: the benchmark needs thousands of models that cost what real ones cost (a full
reference: profile, CBPE, joint detector; 5,000 rows a window; labels), built in minutes.
Models come in a few *families* (a logistic regression trained on its own synthetic data): each
family's reference is built once by the engine (`build_reference`, what `reference_profile`
stores) and shared by its members, while each member gets its own window, drawn with its own
seed. Every DRIFT_EVERY-th model's window is shifted on three features.

`profile-only` writes the references straight into the monitoring store; `registered` also
registers every model in MLflow (a version with the `champion` alias on its family's run), so the
registry sensor can be measured on the same fleet. A fleet's windows are reused when its folder
already holds one of the same size and kind (`fleet.json`); references are written to any store
that lacks them.

    from bench.fleet import build_fleet
    build_fleet(Path("/tmp/fleet"), models=1000, store_url="sqlite:////tmp/fleet/monitoring.db")
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

DAY = "2026-11-20"          # the window every fleet model is evaluated on
FEATURES = 20
ROWS = 5_000
REFERENCE_ROWS = 5_000
FAMILIES = 4
DRIFT_EVERY = 50            # model i drifts when i % DRIFT_EVERY == DRIFT_EVERY - 1 (2% of the fleet)
DRIFTED_FEATURES = ("f00", "f01", "f02")
LABELLED_SHARE = 0.5        # labels that land the same day


def model_names(models: int) -> list[str]:
    return [f"fleet-{i:05d}" for i in range(models)]


def is_drifted(index: int) -> bool:
    return index % DRIFT_EVERY == DRIFT_EVERY - 1


@dataclass(frozen=True)
class Family:
    """One template model: its estimator, the weights that generated its data, its reference."""

    index: int
    estimator: object
    mixing: np.ndarray
    profile: dict
    reference: dict


def _features(rng: np.random.Generator, mixing: np.ndarray, rows: int, shift: bool = False) -> pd.DataFrame:
    """Correlated Gaussian features (a fixed mixing per family), shifted by one sd when drifted."""
    values = rng.normal(size=(rows, FEATURES)) @ mixing
    frame = pd.DataFrame(values, columns=[f"f{j:02d}" for j in range(FEATURES)])
    if shift:
        for name in DRIFTED_FEATURES:
            frame[name] += frame[name].std()
    return frame


def _family(index: int) -> Family:
    from sklearn.linear_model import LogisticRegression

    from watchkeeper.reference import TARGET, build_reference

    rng = np.random.default_rng([7, index])
    mixing = np.eye(FEATURES) + 0.3 * rng.normal(size=(FEATURES, FEATURES)) / np.sqrt(FEATURES)
    weights = rng.normal(size=FEATURES)
    frames = []
    for _ in range(2):   # training and validation rows
        x = _features(rng, mixing, REFERENCE_ROWS)
        y = (x.to_numpy() @ weights + rng.logistic(size=len(x)) > 0).astype("int64")
        frames.append(x.assign(**{TARGET: y}))
    train, validation = frames
    estimator = LogisticRegression(max_iter=500).fit(train.drop(columns=TARGET), train[TARGET])
    reference = build_reference(f"family-{index}", "1", "binary", train, validation, estimator)
    profile, stored = reference.to_stored()
    return Family(index, estimator, mixing, profile, stored)


def _window(name: str, family: Family, drifted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's predictions of a model and the labels that land the same day."""
    rng = np.random.default_rng([11, zlib.crc32(name.encode())])
    x = _features(rng, family.mixing, ROWS, shift=drifted)
    proba = family.estimator.predict_proba(x)
    midnight = int(datetime.fromisoformat(DAY).replace(tzinfo=timezone.utc).timestamp() * 1000)
    stamps = pd.to_datetime(np.sort(rng.integers(0, 86_400_000, ROWS)) + midnight, unit="ms", utc=True)
    ids = [f"{name}-{i:05d}" for i in range(ROWS)]
    predictions = pd.concat([pd.DataFrame({"timestamp": stamps, "prediction_id": ids}), x,
                             pd.DataFrame({"prediction": proba.argmax(axis=1).astype("int64"),
                                           "proba_0": proba[:, 0], "proba_1": proba[:, 1]})], axis=1)
    labelled = rng.random(ROWS) < LABELLED_SHARE
    truth = (rng.random(ROWS) < proba[:, 1]).astype("int64")
    labels = pd.DataFrame({"prediction_id": np.array(ids)[labelled], "label": truth[labelled],
                           "arrived_at": stamps[labelled] + pd.Timedelta(minutes=1)})
    labels["arrived_at"] = labels["arrived_at"].clip(upper=pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(hours=23, minutes=59))
    return predictions, labels


def _register(tracking_uri: str, names: list[str], families: list[Family]) -> None:
    """Each model a registered version with the `champion` alias, on a run of its family."""
    import mlflow
    from mlflow import MlflowClient

    from watchkeeper.registry import CHAMPION, TASK_TAG

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = client.create_experiment("fleet") if client.get_experiment_by_name("fleet") is None \
        else client.get_experiment_by_name("fleet").experiment_id
    runs = [client.create_run(experiment, run_name=f"family-{f.index}").info.run_id for f in families]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={TASK_TAG: "binary"})
        run = runs[i % len(families)]
        version = client.create_model_version(name, f"runs:/{run}/model", run_id=run)
        client.set_registered_model_alias(name, CHAMPION, version.version)


def build_fleet(home: Path, models: int, store_url: str, tracking_uri: str | None = None) -> list[str]:
    """The fleet's windows under `home` (the drop folder; reused when it already holds this fleet)
    and its references in the store at `store_url`; with `tracking_uri`, its models registered in
    MLflow too. Returns the model names."""
    from watchkeeper.store import MonitoringStore

    kind = {"models": models, "features": FEATURES, "rows": ROWS, "day": DAY}
    names = model_names(models)
    families = [_family(i) for i in range(FAMILIES)]
    store = MonitoringStore(store_url)
    known = store.latest_profiles()
    for i, name in enumerate(names):
        if name not in known:
            store.put_profile(name, "1", "binary", families[i % FAMILIES].profile, families[i % FAMILIES].reference)
    marker = home / "fleet.json"
    if not (marker.exists() and json.loads(marker.read_text()) == kind):
        for i, name in enumerate(names):
            predictions, labels = _window(name, families[i % FAMILIES], is_drifted(i))
            for stream, frame in (("inference", predictions), ("labels", labels)):
                path = home / stream / name / f"{DAY}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(path, index=False)
        marker.write_text(json.dumps(kind))
    if tracking_uri:
        _register(tracking_uri, names, families)
    return names
