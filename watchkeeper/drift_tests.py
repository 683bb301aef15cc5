"""Drift tests behind one interface: the built-in ones and those teams register as plugins.

A test sees reference and current counts over common bins, one row per feature, and returns a
statistic and a p-value per row. Numeric bins are the fine grid of the reference sketch, so a test
of counts works on a profile and a streamed window alike; categorical bins are the labels.

A team registers its own test with an entry point in the group ``watchkeeper.drift_tests`` (see
docs/drift.md), names it in the model's drift config (``numeric_test`` or ``categorical_test``), and
its results appear in reports exactly where the built-in test's would.

>>> load_test("ks", "numeric").name
'ks'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import NamedTuple, Protocol

import numpy as np

from watchkeeper.profile import CATEGORICAL, NUMERIC, SKETCH_RANK_ERROR
from watchkeeper.stats import chi2_homogeneity, ks_from_cdfs, ks_pvalue

ENTRY_POINT_GROUP = "watchkeeper.drift_tests"


@dataclass(frozen=True)
class Histograms:
    """Reference and current counts of one kind of feature over common bins, one row per feature.

    Numeric rows: cells (-inf, e0], (e0, e1], ..., (e_last, inf) over ``edges``; reference counts
    come from the quantile sketch, so they may be fractional. Categorical rows: one cell per label
    (zero-padded to a common width); ``edges`` is None.
    """

    names: list[str]
    reference: np.ndarray  # (features, bins)
    current: np.ndarray  # (features, bins)
    edges: np.ndarray | None = None  # (features, bins - 1) for numeric features


class TestResult(NamedTuple):
    statistic: np.ndarray
    p_value: np.ndarray
    error: np.ndarray | None = None  # bound on |statistic - statistic on the raw data|, when sketched


class DriftTest(Protocol):
    """What a drift test provides; built-ins and plugins alike."""

    name: str
    kind: str  # "numeric" | "categorical"

    def __call__(self, histograms: Histograms) -> TestResult | tuple[np.ndarray, np.ndarray]: ...


def _cdfs(counts: np.ndarray) -> np.ndarray:
    """CDF at the inner cell edges: cumulative shares without the last (always 1) entry."""
    total = np.maximum(counts.sum(axis=1, keepdims=True), 1e-300)
    return np.cumsum(counts, axis=1)[:, :-1] / total


class KolmogorovSmirnov:
    """Two-sample KS on the grid; the statistic is read at grid edges, a lower bound of the sup.

    ``error`` is the grid's resolution (stats.ks_from_cdfs) plus the sketch's rank error; the
    p-value uses the lower bound, so the grid never makes the test less conservative.
    """

    name, kind = "ks", NUMERIC

    def __call__(self, histograms: Histograms) -> TestResult:
        lower, upper = ks_from_cdfs(_cdfs(histograms.reference), _cdfs(histograms.current))
        p = ks_pvalue(lower, histograms.reference.sum(axis=1), histograms.current.sum(axis=1))
        return TestResult(lower, p, upper - lower + SKETCH_RANK_ERROR)


class ChiSquare:
    """Chi-square homogeneity of reference vs current label counts (stats.chi2_homogeneity)."""

    name, kind = "chi2", CATEGORICAL

    def __call__(self, histograms: Histograms) -> TestResult:
        return TestResult(*chi2_homogeneity(histograms.reference, histograms.current))


BUILT_IN: dict[str, DriftTest] = {t.name: t for t in (KolmogorovSmirnov(), ChiSquare())}


@cache
def load_test(name: str, kind: str) -> DriftTest:
    """The test registered as ``name`` for ``kind``; ValueError (one line) if there is none."""
    test = BUILT_IN.get(name) or _plugin(name)
    if test.kind != kind:
        raise ValueError(f"drift test {name!r} is for {test.kind} features, not {kind}")
    return test


def _plugin(name: str) -> DriftTest:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        raise ValueError(f"unknown drift test {name!r}; available: {', '.join(available_tests())}")
    try:
        loaded = next(iter(found)).load()
        test = loaded() if isinstance(loaded, type) else loaded
    except Exception as error:  # a broken plugin is the plugin's bug: say which, in one line
        raise ValueError(f"drift test plugin {name!r} failed to load: {type(error).__name__}: {error}") from None
    if not callable(test) or getattr(test, "kind", None) not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"drift test plugin {name!r} must be callable with kind 'numeric' or 'categorical'")
    return test


def available_tests() -> dict[str, str]:
    """Test name -> where it comes from ("built-in" or the plugin's module), without loading plugins."""
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILT_IN}
    return {name: "built-in" for name in BUILT_IN} | dict(sorted(plugins.items()))


def run_test(test: DriftTest, histograms: Histograms) -> TestResult:
    """Call a test and normalise its answer to float arrays of the right length."""
    result = TestResult(*test(histograms))
    n = len(histograms.names)
    statistic, p_value = (np.asarray(a, dtype=float).reshape(n) for a in result[:2])
    error = None if result.error is None else np.asarray(result.error, dtype=float).reshape(n)
    return TestResult(statistic, np.clip(p_value, 0.0, 1.0), error)
