"""The data a challenger learns from, and the recent rows it is judged on.

Recent production windows become labelled examples once their labels arrive (joined by
`prediction_id`, whenever they arrived). The newest of those rows are held out, by time,
as the promotion gate's evaluation set: a challenger is judged on the traffic it will
serve next, and never on a row it was trained on.
"""

from __future__ import annotations

import pandas as pd

from watchkeeper.inference_log import InferenceLog
from watchkeeper.registry import REFERENCE_TARGET, Champion, Registry

HOLDOUT_FRACTION = 0.3
# Which rows a challenger learns from (RetrainPolicy.training_set).
REFERENCE_AND_RECENT, RECENT_ONLY, AUTO = "reference_and_recent", "recent_only", "auto"
TRAINING_SETS = (AUTO, REFERENCE_AND_RECENT, RECENT_ONLY)


class TrainingSetError(ValueError):
    """Unusable retraining input; one line."""


def features_of(frame: pd.DataFrame) -> list[str]:
    """The reference-frame convention: every column but the target is a feature."""
    if REFERENCE_TARGET not in frame.columns:
        raise TrainingSetError(f"frame has no {REFERENCE_TARGET!r} column")
    return [c for c in frame.columns if c != REFERENCE_TARGET]


def recent_labelled_rows(log: InferenceLog, model: str, windows: list[str], features: list[str]) -> pd.DataFrame:
    """Rows of the given production windows that have a label, oldest first: timestamp, features, target."""
    if not windows:
        raise TrainingSetError(f"{model}: no windows given to retrain on")
    frames, missing = [], []
    for day in sorted(windows):
        frame = log.read_window(model, day)
        if frame is None:
            missing.append(day)
        else:
            frames.append(frame)
    if missing:
        raise TrainingSetError(f"{model}: no production window for {', '.join(missing)}")
    predictions = pd.concat(frames, ignore_index=True)
    absent = [c for c in ("timestamp", "prediction_id", *features) if c not in predictions.columns]
    if absent:
        raise TrainingSetError(f"{model}: windows lack columns {', '.join(absent)}")
    duplicated = int(predictions["prediction_id"].duplicated().sum())
    if duplicated:
        raise TrainingSetError(f"{model}: {duplicated} duplicate prediction ids; their labels would join twice")
    labels = log.read_labels(model)[["prediction_id", "label"]]
    joined = predictions.merge(labels, on="prediction_id", how="inner")
    if joined["label"].isna().any():
        raise TrainingSetError(f"{model}: {int(joined['label'].isna().sum())} arrived labels are empty (NaN)")
    rows = joined[["timestamp", *features, "label"]].rename(columns={"label": REFERENCE_TARGET})
    return rows.sort_values("timestamp", kind="stable").reset_index(drop=True)


def holdout_split(rows: pd.DataFrame, fraction: float = HOLDOUT_FRACTION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows to learn from, newest `fraction` of rows to judge on), without the timestamp.

    A time split rather than a random one: rows of the same hour are alike, so a random
    split would let the challenger peek at its own evaluation traffic.
    """
    if not 0 < fraction < 1:
        raise TrainingSetError(f"holdout fraction must be in (0, 1), got {fraction}")
    n_holdout = round(len(rows) * fraction)
    if n_holdout == 0 or n_holdout == len(rows):
        raise TrainingSetError(f"{len(rows)} labelled rows cannot be split {1 - fraction:.0%}/{fraction:.0%}")
    ordered = rows.sort_values("timestamp", kind="stable").drop(columns="timestamp")
    cut = len(rows) - n_holdout
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def build_training_set(registry: Registry, champion: Champion, log: InferenceLog, windows: list[str],
                       holdout_fraction: float = HOLDOUT_FRACTION, policy: str = REFERENCE_AND_RECENT,
                       concept_drift: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation): the older recent labelled rows (after the champion's reference training
    frame, unless `policy` says recent rows only; see `training_rows`), and the newest recent rows
    held out for the gate. Both have the reference columns (features, then "target"), so they can be
    logged as the next version's reference frames.
    """
    reference, _ = registry.reference_frames(champion)
    recent, evaluation = holdout_split(recent_labelled_rows(log, champion.name, windows, features_of(reference)),
                                       holdout_fraction)
    return training_rows(reference, recent, policy, concept_drift), evaluation


def uses_recent_only(policy: str, concept_drift: bool) -> bool:
    """Whether a challenger learns from the recent rows alone: by policy, or (`auto`) under concept drift."""
    if policy not in TRAINING_SETS:
        raise TrainingSetError(f"unknown training set policy {policy!r} (one of {', '.join(TRAINING_SETS)})")
    return policy == RECENT_ONLY or (policy == AUTO and concept_drift)


def training_rows(reference: pd.DataFrame, recent: pd.DataFrame, policy: str = REFERENCE_AND_RECENT,
                  concept_drift: bool = False) -> pd.DataFrame:
    """The rows a challenger learns from.

    Under concept drift the relation between inputs and label changed: the reference rows teach
    the old relation, and mixed in they pull the challenger back to it (and, logged as its
    reference frame, would make the next profile describe a concept that no longer holds). So
    `recent_only`, or `auto` when the problem was concept drift, learns from the recent labelled
    rows alone; otherwise the reference rows keep what the model knew (`with_reference`).
    """
    if uses_recent_only(policy, concept_drift):
        return recent[list(reference.columns)].reset_index(drop=True)
    return with_reference(reference, recent)


def with_reference(reference: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """Reference rows then recent rows, in the reference's column order: the past is not forgotten,
    the present is added (and outweighs it once enough labels have arrived)."""
    return pd.concat([reference, recent[list(reference.columns)]], ignore_index=True)
