"""One verdict per model and window, with the evidence it rests on.

The verdict combines three kinds of signal:
- performance judged against the model's reference *with the window's uncertainty*: a model
  is only degraded when even the optimistic end of its interval is worse than the reference
  by more than the tolerance, so small label samples cannot page anyone;
- the drift engine's per-feature decisions (significant after BH and past an effect floor);
- the model's own history (watchkeeper.history): a signal alerts only when it is also
  unusual for this model's past windows of the same weekday, so a weekly pattern that the
  reference averages away does not page every weekend.
A concept-drift alarm of the stream detectors counts as degradation in its own right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from watchkeeper.decision import DriftConfig, effect_text
from watchkeeper.history import DRIFT, SeasonalBaseline, combine, evidence, metric_signal, window_signals
from watchkeeper.performance import HIGHER_IS_BETTER, PRIMARY_METRIC, MetricValue, is_degraded
from watchkeeper.root_cause import rank_causes

OK, DRIFTED, DEGRADED, NO_DATA = "ok", "drifted", "degraded", "no_data"
FAILED = "failed"   # the window could not be evaluated (watchkeeper.monitor says which stage, and why)
SEVERITY = {OK: "none", NO_DATA: "info", DRIFTED: "warning", DEGRADED: "critical", FAILED: "warning"}


@dataclass(frozen=True)
class HealthPolicy:
    """When a window's performance counts as degraded.

    `tolerance` is absolute for higher-is-better metrics (accuracy 0.05 = five points)
    and relative for error metrics (mae 0.2 = 20% worse than the reference).
    `min_labelled` keeps a verdict from resting on a handful of early labels.
    """

    tolerance: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.05, "mae": 0.2})
    min_labelled: int = 30


@dataclass(frozen=True)
class WindowEvidence:
    """Everything known about one model's window when its verdict is made."""

    task: str
    drift: dict | None                 # DriftReport.to_dict(), None when the window had no rows
    metrics: list[dict]                # MetricValue dicts of the realised metrics
    reference: dict                    # {"metrics": {name: MetricValue dict}, "importance": {feature: share}}
    n_labelled: int
    concept_alarms: list[dict] = field(default_factory=list)   # stream detector alarms in this window
    segment_deltas: dict[str, float] | None = None


@dataclass(frozen=True)
class Verdict:
    status: str
    reasons: list[dict]

    @property
    def severity(self) -> str:
        return SEVERITY[self.status]


def assess(window: WindowEvidence, day: str, history: pd.DataFrame, policy: HealthPolicy = HealthPolicy(),
           drift_config: DriftConfig = DriftConfig()) -> Verdict:
    """Combine performance, drift, history and stream signals of one window into a verdict."""
    if window.drift is None or window.drift["n_current"] == 0:
        return Verdict(NO_DATA, [{"signal": "traffic", "detail": "no predictions in this window"}])
    primary = PRIMARY_METRIC[window.task]
    performance = _performance_reason(window, policy)
    anomalies = SeasonalBaseline().fit(history).score(day, window_signals(window.drift, window.metrics))
    decisions = combine(window.drift, anomalies, degraded={primary: performance is not None})
    alerting = {d.signal.removeprefix(DRIFT) for d in decisions if d.alert and d.signal.startswith(DRIFT)}
    degraded = performance is not None and any(d.alert for d in decisions if d.signal == metric_signal(primary))
    data_drift = drift_config.dataset_drift(len(alerting), len(window.drift["features"]))
    reasons = []
    if degraded:
        reasons.append(performance)
    if window.concept_alarms:
        reasons.append({"signal": "concept_drift", "detail": _alarms_text(window.concept_alarms),
                        "alarms": window.concept_alarms})
    if data_drift:
        reasons.append(_drift_reason(window.drift, alerting))
    if degraded or window.concept_alarms:
        reasons.append(_root_cause(window, primary, data_drift))
    if any(d.fired for d in decisions):
        reasons.append({"signal": "history", "detail": "Each signal was also weighed against this model's own "
                        "past windows of the same weekday.", "decisions": evidence(decisions)})
    status = DEGRADED if degraded or window.concept_alarms else DRIFTED if data_drift else OK
    return Verdict(status, reasons)


def _drift_reason(drift: dict, alerting: set[str]) -> dict:
    drifted = sorted((f for f in drift["features"] if f["name"] in alerting), key=lambda f: -(f["effect_size"] or 0.0))
    named = ", ".join(f"{f['name']} ({effect_text(f['effect_metric'], f['effect_size'])})" for f in drifted[:NAMED])
    more = f" and {len(drifted) - NAMED} more" if len(drifted) > NAMED else ""
    return {
        "signal": "data_drift",
        "detail": f"{len(drifted)} of {len(drift['features'])} features drifted and are unusual for this model, "
                  f"largest effect first: {named}{more}.",
        "features": [{"name": f["name"], "test": f["test"], "statistic": f["statistic"], "p_value": f["p_value"],
                      "effect_size": f["effect_size"], "effect_metric": f["effect_metric"]} for f in drifted],
    }


NAMED = 5   # drifted features a verdict names; the drift report lists them all


def _alarms_text(alarms: list[dict]) -> str:
    """The stream detectors' alarms of a window in whole sentences: which detector, where it fired
    (prediction index and time) and the error rate before and from that point on."""
    def where(alarm: dict) -> str:
        at = f"at prediction {alarm['index']}" + (f" ({str(alarm['timestamp'])[:16]})" if alarm.get("timestamp") else "")
        before, after = alarm.get("error_rate_before"), alarm.get("error_rate_after")
        rates = f", error rate {before:.3g} before and {after:.3g} after" if before is not None and after is not None else ""
        return at + rates
    detector = alarms[0].get("detector") or "stream"
    shown = "; ".join(where(a) for a in alarms[:3]) + (f"; and {len(alarms) - 3} more" if len(alarms) > 3 else "")
    return (f"The {detector} detector on the prediction errors raised {len(alarms)} "
            f"alarm{'s' if len(alarms) != 1 else ''}: {shown}.")


def _root_cause(window: WindowEvidence, primary: str, data_drift: bool) -> dict:
    cause = rank_causes(window.drift, window.reference.get("importance") or _even(window.drift),
                        window.segment_deltas, covariate_drift=data_drift, performance_degraded=True,
                        higher_is_better=HIGHER_IS_BETTER[primary])
    return {"signal": "root_cause", "detail": cause.explanation, **cause.to_dict()}


def _even(drift: dict) -> dict[str, float]:
    """Equal importance when the profile has none measured (e.g. a model that cannot be scored)."""
    return {f["name"]: 1.0 / len(drift["features"]) for f in drift["features"]}


def _performance_reason(window: WindowEvidence, policy: HealthPolicy) -> dict | None:
    name = PRIMARY_METRIC[window.task]
    current = next((m for m in window.metrics if m["name"] == name), None)
    reference = window.reference["metrics"].get(name)
    if current is None or reference is None or window.n_labelled < policy.min_labelled:
        return None
    value, ref = MetricValue(**current), MetricValue(**reference)
    if not is_degraded(value, ref, policy.tolerance[name]):
        return None
    direction = "below" if HIGHER_IS_BETTER[name] else "above"
    return {
        "signal": "performance",
        "detail": f"{name.capitalize()} {value.value:.3g} (90% interval {value.lower:.3g} to {value.upper:.3g}) is "
                  f"{direction} the reference {ref.value:.3g} by more than the tolerance {policy.tolerance[name]:g}.",
        "metric": name, "value": value.value, "lower": value.lower, "upper": value.upper,
        "reference": ref.value, "n_labelled": window.n_labelled,
    }
