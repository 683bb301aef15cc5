"""One verdict per model and window, with the evidence it rests on.

The verdict combines the drift engine's decision with performance judged against the
model's reference performance *with the window's uncertainty*: a model is only called
degraded when even the optimistic end of its confidence interval is worse than the
reference by more than the tolerance, so small label samples cannot page anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watchkeeper.performance import HIGHER_IS_BETTER, PRIMARY_METRIC, MetricValue, is_degraded

OK, DRIFTED, DEGRADED, NO_DATA = "ok", "drifted", "degraded", "no_data"
SEVERITY = {OK: "none", NO_DATA: "info", DRIFTED: "warning", DEGRADED: "critical"}


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
class Verdict:
    status: str
    reasons: list[dict]

    @property
    def severity(self) -> str:
        return SEVERITY[self.status]


def assess(task: str, drift: dict | None, metrics: list[dict], reference_metrics: dict[str, dict],
           n_labelled: int, policy: HealthPolicy = HealthPolicy()) -> Verdict:
    """Combine the data-drift and performance signals of one window into a verdict."""
    if drift is None or drift["n_current"] == 0:
        return Verdict(NO_DATA, [{"signal": "traffic", "detail": "no predictions in this window"}])
    reasons = []
    performance = _performance_reason(task, metrics, reference_metrics, n_labelled, policy)
    if performance:
        reasons.append(performance)
    if drift["dataset_drift"]:
        drifted = [f for f in drift["features"] if f["drifted"]]
        drifted.sort(key=lambda f: -(f["effect_size"] or 0.0))
        reasons.append({
            "signal": "data_drift",
            "detail": f"{len(drifted)} of {len(drift['features'])} features drifted",
            "features": [{"name": f["name"], "test": f["test"], "p_value": f["p_value"],
                          "effect_size": f["effect_size"], "effect_metric": f["effect_metric"]} for f in drifted],
        })
    status = DEGRADED if performance else DRIFTED if drift["dataset_drift"] else OK
    return Verdict(status, reasons)


def _performance_reason(task: str, metrics: list[dict], reference_metrics: dict[str, dict],
                        n_labelled: int, policy: HealthPolicy) -> dict | None:
    name = PRIMARY_METRIC[task]
    current = next((m for m in metrics if m["name"] == name), None)
    reference = reference_metrics.get(name)
    if current is None or reference is None or n_labelled < policy.min_labelled:
        return None
    window, ref = MetricValue(**current), MetricValue(**reference)
    if not is_degraded(window, ref, policy.tolerance[name]):
        return None
    direction = "below" if HIGHER_IS_BETTER[name] else "above"
    return {
        "signal": "performance",
        "detail": f"{name} {window.value:.3f} [{window.lower:.3f}, {window.upper:.3f}] is {direction} "
                  f"the reference {ref.value:.3f} beyond tolerance {policy.tolerance[name]}",
        "metric": name, "value": window.value, "lower": window.lower, "upper": window.upper,
        "reference": ref.value, "n_labelled": n_labelled,
    }
