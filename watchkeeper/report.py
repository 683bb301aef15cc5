"""What a drift evaluation says, per feature and for the window, in a JSON-safe shape.

The shape of ``DriftReport.to_dict()`` is a contract (DESIGN.md): the CLI's JSON output, the
monitoring store and the plots read it. Keys may be added, never renamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any


def json_float(x: float | None) -> float | None:
    """Plain JSON-safe float: numpy scalars become floats, NaN/inf become None."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class FeatureDrift:
    """Result for one feature: the deciding test, every distance, both signals and the verdict."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    p_adjusted: float | None
    effect_size: float | None  # the deciding effect: the first to clear its floor, else the closest
    effect_metric: str | None
    drifted: bool
    missing_rate_reference: float
    missing_rate_current: float
    bin_labels: list[str]
    reference_share: list[float]
    current_share: list[float]
    reason: str | None = None  # "distribution", "missing_rate" or both, when drifted
    note: str | None = None  # why a signal could not be tested, in one line
    statistic_error: float | None = None  # bound on the sketch's error in the statistic (0: exact)
    distances: dict[str, float | None] = field(default_factory=dict)  # psi, jensen_shannon, hellinger, wasserstein, ks...
    missing_rate_p_value: float | None = None
    missing_rate_p_adjusted: float | None = None
    effect_ratio: float | None = None  # effect_size / its floor: >= 1 is large enough to drift

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}   # shallow: asdict's deep copy cost ~1 ms a feature
        d["bin_labels"] = list(self.bin_labels)
        distances = d.pop("distances")
        for key in ("statistic", "p_value", "p_adjusted", "effect_size", "effect_ratio", "statistic_error",
                    "missing_rate_reference", "missing_rate_current", "missing_rate_p_value",
                    "missing_rate_p_adjusted"):
            d[key] = json_float(d[key])
        d["drifted"] = bool(self.drifted)
        d["reference_share"] = [float(x) for x in self.reference_share]
        d["current_share"] = [float(x) for x in self.current_share]
        return d | {k: json_float(v) for k, v in distances.items()}


@dataclass
class DriftReport:
    dataset_drift: bool
    n_reference: int
    n_current: int
    features: list[FeatureDrift]
    ignored_columns: list[str] = field(default_factory=list)  # window columns the profile does not know

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": bool(self.dataset_drift),
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "features": [f.to_dict() for f in self.features],
            "drifted_features": self.drifted_features,
            "share_drifted": float(self.share_drifted),
            "ignored_columns": list(self.ignored_columns),
        }


