"""The promotion gate: does the challenger beat the champion on recent labelled data, beyond noise?

Both models are scored on the same evaluation rows, and every bootstrap resample draws
rows once for both models (a paired bootstrap). Two models make most of their mistakes
on the same hard rows, so their metrics move together from resample to resample: the
interval of the per-resample *difference* is much narrower than two separate intervals
suggest, and it is the one that answers the question (whether two intervals overlap is
not a test of their difference). The challenger is promoted only when the lower bound of
its improvement clears the margin, so an equally good challenger, lucky on this sample,
does not replace the champion.

Improvement follows the health policy's convention: absolute for scores in [0, 1]
(accuracy 0.02 = two points better) and relative for error metrics (mae 0.05 = 5% lower
error), so one margin means the same for models whose targets have different scales.
A negative margin makes the gate a non-inferiority test ("not worse by more than").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.performance import (
    HIGHER_IS_BETTER, METRIC_NAMES, PRIMARY_METRIC, PROBABILITY_METRICS, REGRESSION, MetricValue, weighted_metrics,
    percentile_interval, resample_counts,
)
from watchkeeper.profile import category_label
from watchkeeper.registry import CHAMPION, REFERENCE_TARGET, Registry
from watchkeeper.retraining.challenger import CHALLENGER, predictions

PREVIOUS_CHAMPION = "previous_champion"
AUTO, TICKET = "auto", "ticket"                      # approval policies
PROMOTED, NEEDS_APPROVAL, REJECTED = "promoted", "needs_approval", "rejected"
GATE_TAG, GATE_STATUS_TAG = "watchkeeper.gate", "watchkeeper.gate_status"
# Fewer evaluation rows give a bootstrap of a handful of distinct values: no interval worth trusting.
MIN_EVAL_ROWS = 30


class GateError(ValueError):
    """Models or evaluation data the gate cannot compare; one line."""


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    champion: MetricValue
    challenger: MetricValue
    difference: MetricValue   # the challenger's improvement, with its paired bootstrap interval
    margin: float
    confidence: float
    n_eval: int
    reason: str

    def to_dict(self) -> dict:
        return {"promote": self.promote, "metric": self.metric, "champion": self.champion.to_dict(),
                "challenger": self.challenger.to_dict(), "difference": self.difference.to_dict(),
                "margin": self.margin, "confidence": self.confidence, "n_eval": self.n_eval, "reason": self.reason}


def evaluate_gate(task: str, champion_model: Any, challenger_model: Any, eval_df: pd.DataFrame,
                  features: list[str], margin: float = 0.0, metric: str | None = None, *,
                  target: str = REFERENCE_TARGET, confidence: float = 0.95, n_boot: int = 1000,
                  seed: int = 0) -> GateDecision:
    """Compare the two models on `eval_df` by `metric` (the task's primary metric by default).

    The interval is two-sided at `confidence`, so its lower bound is a one-sided test at
    (1 + confidence) / 2: 97.5% by default.
    """
    metric = metric or PRIMARY_METRIC.get(task, "")
    _check(task, metric, eval_df, features, target, confidence, n_boot)
    X, y = eval_df[features], eval_df[target].to_numpy()
    champion_out, challenger_out = _scored(champion_model, X, task, "champion"), _scored(challenger_model, X, task,
                                                                                       "challenger")
    if None not in (champion_out[2], challenger_out[2]) and champion_out[2] != challenger_out[2]:
        raise GateError(f"the models predict different classes: {champion_out[2]} vs {challenger_out[2]}")
    _check_probabilities(metric, champion_out, challenger_out)
    _check_labels(task, eval_df[target], champion_out[2] or challenger_out[2])
    n = len(y)
    counts = resample_counts(n, n_boot, seed)
    (champion_point, champion_boots), (challenger_point, challenger_boots) = (
        _replicates(task, metric, y, out, counts) for out in (champion_out, challenger_out))
    with np.errstate(divide="ignore", invalid="ignore"):
        point = _improvement(metric, np.float64(champion_point), np.float64(challenger_point))
        boots = _improvement(metric, champion_boots, challenger_boots)
    difference = percentile_interval(f"{metric}_improvement", point, boots, confidence)
    promote = difference.lower is not None and difference.lower > margin
    return GateDecision(promote, metric, percentile_interval(metric, champion_point, champion_boots, confidence),
                        percentile_interval(metric, challenger_point, challenger_boots, confidence), difference,
                        margin, confidence, n, _reason(promote, metric, difference, margin, confidence))


def promote(registry: Registry, model_name: str, challenger_version: str) -> str | None:
    """Make `challenger_version` the champion; returns the version it replaced, which keeps the
    alias `previous_champion` so a rollback is one alias move."""
    registered = registry.client.get_registered_model(model_name)
    aliases = {alias: str(version) for alias, version in registered.aliases.items()}  # MLflow 3.17 gives ints
    previous = aliases.get(CHAMPION)
    if previous is not None and previous != challenger_version:
        registry.client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, previous)
    registry.client.set_registered_model_alias(model_name, CHAMPION, challenger_version)
    if aliases.get(CHALLENGER) == challenger_version:
        registry.client.delete_registered_model_alias(model_name, CHALLENGER)
    return previous


def apply_decision(registry: Registry, model_name: str, version: str, decision: GateDecision,
                   approval: str = AUTO) -> str:
    """Act on a decision by policy: promote (auto), or leave the aliases for a person to approve
    (ticket). The decision is recorded on the version's tags either way: MLflow shows why."""
    if approval not in (AUTO, TICKET):
        raise GateError(f"unknown approval policy {approval!r}; expected {AUTO!r} or {TICKET!r}")
    status = REJECTED if not decision.promote else PROMOTED if approval == AUTO else NEEDS_APPROVAL
    registry.client.set_model_version_tag(model_name, version, GATE_TAG, json.dumps(decision.to_dict()))
    registry.client.set_model_version_tag(model_name, version, GATE_STATUS_TAG, status)
    if status == PROMOTED:
        promote(registry, model_name, version)
    return status


def _check(task: str, metric: str, frame: pd.DataFrame, features: list[str], target: str,
           confidence: float, n_boot: int) -> None:
    """What can be refused before either model is run."""
    if task not in METRIC_NAMES:
        raise GateError(f"unknown task {task!r}; expected one of {sorted(METRIC_NAMES)}")
    if metric not in METRIC_NAMES[task]:
        raise GateError(f"metric {metric!r} does not apply to {task}; expected one of {list(METRIC_NAMES[task])}")
    missing = [c for c in (*features, target) if c not in frame.columns]
    if missing:
        raise GateError(f"evaluation data lacks columns {', '.join(missing)}")
    if len(frame) < MIN_EVAL_ROWS:
        raise GateError(f"evaluation data has {len(frame)} rows; the gate needs at least {MIN_EVAL_ROWS}")
    if not 0 < confidence < 1 or n_boot < 1:
        raise GateError(f"need 0 < confidence < 1 and n_boot >= 1, got {confidence}, {n_boot}")
    unlabelled = int(frame[target].isna().sum())
    if unlabelled:
        raise GateError(f"{unlabelled} evaluation rows have no label in {target!r}")
    if task == REGRESSION:
        values = pd.to_numeric(frame[target], errors="coerce")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise GateError(f"the regression target {target!r} holds values that are not finite numbers")
    elif frame[target].nunique() < 2:
        raise GateError(f"evaluation data has a single class ({category_label(frame[target].iloc[0])}) in {target!r}: "
                        "a classifier cannot be compared on it")


def _check_probabilities(metric: str, champion_out: tuple, challenger_out: tuple) -> None:
    """A probability metric cannot judge a model that only predicts labels: say so, name the way out."""
    if metric not in PROBABILITY_METRICS:
        return
    without = [role for role, out in (("champion", champion_out), ("challenger", challenger_out)) if out[1] is None]
    if without:
        raise GateError(f"{metric} needs class probabilities; the {' and the '.join(without)} model gives none "
                        f"(it only predicts labels): compare on a label metric such as accuracy or f1")


def _check_labels(task: str, labels: pd.Series, classes: list | None) -> None:
    """A classifier is judged only on labels it can predict: another label is an error in the data."""
    if task == REGRESSION or classes is None:
        return
    unseen = sorted({category_label(v) for v in labels.unique()} - {category_label(c) for c in classes})
    if unseen:
        raise GateError(f"labels the models never saw in {labels.name!r}: {', '.join(unseen[:5])} "
                        f"(the models predict {', '.join(map(str, classes))})")


def _scored(model: Any, X: pd.DataFrame, task: str, role: str) -> tuple:
    """The model's predictions; any failure of the model's own code becomes one GateError line."""
    try:
        return predictions(model, X, task)
    except Exception as error:  # a model is outside code: whatever it raises, the data did not fit it
        text = " ".join(str(error).split())[:300]
        raise GateError(f"the {role} model cannot score the evaluation data ({type(error).__name__}: {text})") from None


def _replicates(task: str, metric: str, y: np.ndarray, output: tuple, counts: np.ndarray) -> tuple[float, np.ndarray]:
    """One model's metric on the evaluation rows and on each resample, by the monitoring code's own
    weighted metrics (a resample is a row of multiplicities; weight row 0, all ones, is the data itself)."""
    predicted, proba, classes = output
    weights = np.vstack([np.ones(len(y)), counts])
    # label metrics first: they need not pay for the probability metrics' sorting
    stats = weighted_metrics(task, y, np.asarray(predicted), None, classes, weights)
    if metric not in stats and task != REGRESSION:
        stats = weighted_metrics(task, y, np.asarray(predicted), proba, classes, weights)
    if metric not in stats or not np.isfinite(stats[metric][0]):
        raise GateError(f"{metric} cannot be computed on this evaluation data (a class missing from the labels?)")
    return float(stats[metric][0]), stats[metric][1:]


def _improvement(metric: str, champion, challenger):
    """Positive when the challenger is better: absolute for scores, relative for errors."""
    if HIGHER_IS_BETTER[metric]:
        return challenger - champion
    return (champion - challenger) / champion


def _reason(promote: bool, metric: str, difference: MetricValue, margin: float, confidence: float) -> str:
    if difference.value is None or difference.lower is None:
        return f"{difference.name} could not be estimated on the evaluation data: not promoted"
    kind = "absolute" if HIGHER_IS_BETTER[metric] else "relative"
    verdict = "clears" if promote else "does not clear"
    return (f"{kind} {difference.name} {difference.value:+.4f}, {confidence:.0%} paired bootstrap interval "
            f"[{difference.lower:+.4f}, {difference.upper:+.4f}]: the lower bound {verdict} the margin {margin:+.4f}")
