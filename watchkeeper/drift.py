"""Compare a current window with a reference profile, feature by feature and as a whole.

The window is folded into a sketch (watchkeeper.sketch) in batches, the same way whether it is a
DataFrame (evaluate_drift) or a Parquet file streamed in record batches (evaluate_parquet). Every
statistic is then computed for all features of a kind at once (watchkeeper.stats), and the verdict
follows watchkeeper.decision: significant after Benjamini-Hochberg AND an effect above its floor.
For small windows against a small reference whose values the profile keeps, the KS statistic is
computed exactly from both samples (as scipy's ks_2samp).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from watchkeeper.decision import LABEL_EFFECT, SHAPE_EFFECT, DriftConfig, decide
from watchkeeper.drift_tests import Histograms, TestResult, load_test, run_test
from watchkeeper.profile import CATEGORICAL, NUMERIC, OTHER, PSI_BINS, FeatureProfile, ReferenceProfile
from watchkeeper.report import DriftReport, FeatureDrift, json_float
from watchkeeper.sketch import GRID_REFINE, SketchInputError, WindowSketch
from watchkeeper.stats import (
    hellinger,
    jensen_shannon,
    ks_from_cdfs,
    ks_pvalue,
    label_shift,
    psi,
    shares,
    two_proportions,
    two_sample_ks,
    wasserstein_on_grid,
)

if TYPE_CHECKING:  # evaluate_drift takes a DataFrame; files never need pandas
    import pandas as pd

__all__ = ["DriftConfig", "DriftInputError", "DriftReport", "FeatureDrift", "evaluate_drift", "evaluate_parquet", "psi"]


class DriftInputError(ValueError):
    """The current window cannot be compared with the profile (one-line, user-facing message)."""


@dataclass
class _KindResult:
    """Columnar results for all features of one kind, before the decision."""

    features: list[FeatureProfile]
    test: str
    statistic: np.ndarray
    p_value: np.ndarray  # NaN where the distribution cannot be tested
    error: np.ndarray | None
    distances: dict[str, np.ndarray]
    missing: np.ndarray  # current missing count
    rows: np.ndarray  # current rows
    labels: list[list[str]]
    reference_share: list[np.ndarray]
    current_share: list[np.ndarray]
    notes: list[str | None]


def _distances(reference: np.ndarray, current: np.ndarray) -> dict[str, np.ndarray]:
    r, c = shares(reference), shares(current)
    return {"psi": psi(r, c), "jensen_shannon": jensen_shannon(r, c), "hellinger": hellinger(r, c)}


def _note(reference_count: float, current_count: float) -> str | None:
    if not reference_count:
        return "the reference has no values: only the missing rate is tested"
    if not current_count:
        return "the window has no values: only the missing rate is tested"
    return None


def _numeric(features: list[FeatureProfile], sketch: WindowSketch, config: DriftConfig) -> _KindResult:
    grid, state = sketch.grid, sketch.numeric
    n_ref = np.array([f.count for f in features], dtype=float)
    reference = np.diff(np.pad(grid.ref_cdf, ((0, 0), (1, 1)), constant_values=(0.0, 1.0)), axis=1) * n_ref[:, None]
    current = _cell_counts(state.cum, state.finite)
    cur_cdf = state.cum / np.maximum(state.finite, 1)[:, None]
    exact = _exact_ks(features, sketch.kept_values())
    ks = ks_from_cdfs(grid.ref_cdf, cur_cdf)[0]
    ks[list(exact)] = [d for d, _ in exact.values()]
    result = run_test(load_test(config.numeric_test, NUMERIC), Histograms(grid.names, reference, current, grid.edges))
    statistic, p_value, error = _with_exact(result, exact) if config.numeric_test == "ks" else result
    inner = slice(GRID_REFINE, -GRID_REFINE)  # winsorized at the reference's 0.5% and 99.5% quantiles
    w1 = wasserstein_on_grid(grid.edges[:, inner], grid.ref_cdf[:, inner], cur_cdf[:, inner])
    sd = np.array([f.std or 0.0 for f in features])
    mean, std = state.mean_std(grid.center)
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = np.abs(cur_cdf - grid.ref_cdf).max(axis=1, initial=0.0) > 0  # a constant reference: any change
        wasserstein = np.where(sd > 0, w1 / sd, np.where(moved, np.inf, 0.0))
        moments = {"mean_shift_sd": (mean - [f.mean or 0.0 for f in features]) / sd, "std_ratio": std / sd}
    ref_bins, cur_bins, keep = _psi_bins(features, state.bin_cum, state.finite)
    testable = grid.testable & (state.finite > 0)
    distances = _distances(ref_bins, cur_bins) | {"wasserstein": wasserstein, SHAPE_EFFECT: ks} | moments
    return _KindResult(
        features, config.numeric_test, np.where(testable, statistic, np.nan), np.where(testable, p_value, np.nan),
        None if error is None else np.where(testable, error, np.nan),
        {k: np.where(testable, v, np.nan) for k, v in distances.items()}, state.missing, state.rows,
        [_bin_labels(f.bin_edges or []) for f in features],
        [s[k] for s, k in zip(shares(ref_bins), keep)], [s[k] for s, k in zip(shares(cur_bins), keep)],
        [_note(f.count, n) for f, n in zip(features, state.finite)],
    )


def _exact_ks(features: list[FeatureProfile], kept: dict[str, np.ndarray]) -> dict[int, tuple[float, float]]:
    """Row -> exact KS statistic and p-value, where the profile kept the reference values and the
    window was small enough to keep its own (sketch.EXACT_KS_MAX_ROWS)."""
    exact = {}
    for i, f in enumerate(features):
        values = kept.get(f.name)
        if f.exact_values and values is not None and len(values):
            d = two_sample_ks(np.asarray(f.exact_values, dtype=float), values)
            exact[i] = (d, float(ks_pvalue(np.array([d]), len(f.exact_values), len(values))[0]))
    return exact


def _cell_counts(cumulative: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Counts per cell from counts <= each edge: cells (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    return np.diff(cumulative, axis=1, prepend=0.0, append=total[:, None])


def _with_exact(result: TestResult, exact: dict[int, tuple[float, float]]) -> TestResult:
    """Replace sketched results by exact ones where they were computed (their error is then 0)."""
    statistic, p_value = result.statistic.copy(), result.p_value.copy()
    error = None if result.error is None else result.error.copy()
    for i, (d, p) in exact.items():
        statistic[i], p_value[i] = d, p
        if error is not None:
            error[i] = 0.0
    return TestResult(statistic, p_value, error)


def _psi_bins(features: list[FeatureProfile], bin_cum: np.ndarray, finite: np.ndarray):
    """Reference and current counts in the profile's PSI bins, padded to PSI_BINS, and the real bins.

    Padded edges repeat the last real one, so their bins are empty on both sides and add nothing.
    """
    current = _cell_counts(bin_cum, finite)
    reference = np.zeros_like(current)
    keep = []
    for row, f in zip(reference, features):
        counts = f.bin_counts or [0]
        row[:len(counts) - 1], row[-1] = counts[:-1], counts[-1]
        keep.append(np.r_[0:len(counts) - 1, PSI_BINS - 1])
    return reference, current, keep


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    e = [f"{x:.4g}" for x in edges]
    return [f"<= {e[0]}", *(f"({a}, {b}]" for a, b in zip(e, e[1:])), f"> {e[-1]}"]


def _label_table(feature: FeatureProfile, counts: dict[str, int]) -> tuple[list[str], list[int], list[int]]:
    """Union of labels, reference first. With an OTHER bucket in the reference, labels it does not
    name may have been in its tail, so they are folded into OTHER rather than called new."""
    ref = feature.categories or {}
    if OTHER in ref:
        folded = {k: v for k, v in counts.items() if k in ref}
        folded[OTHER] = folded.get(OTHER, 0) + sum(v for k, v in counts.items() if k not in ref)
        counts = folded
    new = sorted((k for k in counts if k not in ref), key=lambda k: (-counts[k], k))
    labels = [*ref, *new]
    return labels, [ref.get(k, 0) for k in labels], [counts.get(k, 0) for k in labels]


def _categorical(features: list[FeatureProfile], sketch: WindowSketch, config: DriftConfig) -> _KindResult:
    states = [sketch.categorical[f.name] for f in features]
    tables = [_label_table(f, s.counts) for f, s in zip(features, states)]
    width = max([len(t[0]) for t in tables] + [1])
    reference, current = np.zeros((len(features), width)), np.zeros((len(features), width))
    for i, (labels, ref, cur) in enumerate(tables):
        reference[i, :len(labels)], current[i, :len(labels)] = ref, cur
    result = run_test(load_test(config.categorical_test, CATEGORICAL),
                      Histograms([f.name for f in features], reference, current))
    testable = (reference.sum(axis=1) > 0) & (current.sum(axis=1) > 0)
    distances = _distances(reference, current)
    distances[LABEL_EFFECT] = label_shift(shares(reference), shares(current), config.label_ratio_floor)
    return _KindResult(
        features, config.categorical_test, np.where(testable, result.statistic, np.nan),
        np.where(testable, result.p_value, np.nan), result.error,
        {k: np.where(testable, v, np.nan) for k, v in distances.items()},
        np.array([s.missing for s in states], dtype=float), np.array([s.rows for s in states], dtype=float),
        [t[0] for t in tables], [s[:len(t[0])] for s, t in zip(shares(reference), tables)],
        [s[:len(t[0])] for s, t in zip(shares(current), tables)],
        [_note(r.sum(), c.sum()) for r, c in zip(reference, current)],
    )


# ---------------------------------------------------------------- assembly and entry points


def report_from_sketch(profile: ReferenceProfile, sketch: WindowSketch, config: DriftConfig,
                       ignored: list[str]) -> DriftReport:
    """Decide across all features of a folded window at once, then lay the results out in profile order."""
    kinds = {kind: [f for f in profile.features.values() if f.kind == kind] for kind in (NUMERIC, CATEGORICAL)}
    results = []
    if kinds[NUMERIC]:
        results.append(_numeric(kinds[NUMERIC], sketch, config))
    if kinds[CATEGORICAL]:
        results.append(_categorical(kinds[CATEGORICAL], sketch, config))
    where = {r.features[i].name: (r, i) for r in results for i in range(len(r.features))}
    rows = [where[name] for name in profile.features]

    def column(get) -> np.ndarray:
        return np.array([get(r, i) for r, i in rows], dtype=float)

    missing_ref = column(lambda r, i: r.features[i].missing)
    total_ref = column(lambda r, i: r.features[i].count + r.features[i].missing)
    missing_cur, total_cur = column(lambda r, i: r.missing[i]), column(lambda r, i: r.rows[i])
    rate_ref = np.divide(missing_ref, total_ref, out=np.zeros_like(missing_ref), where=total_ref > 0)
    rate_cur = np.divide(missing_cur, total_cur, out=np.zeros_like(missing_cur), where=total_cur > 0)
    missing_p = two_proportions(missing_ref, total_ref, missing_cur, total_cur)
    floors = [config.effect_floors(r.features[i].kind) for r, i in rows]
    effects = np.array([[r.distances[name][i] for name in f] for (r, i), f in zip(rows, floors)], dtype=float)
    verdict = decide(config, column(lambda r, i: r.p_value[i]), effects.reshape(len(rows), -1),
                     np.array([list(f.values()) for f in floors], dtype=float).reshape(len(rows), -1),
                     np.array([list(f) for f in floors], dtype=object).reshape(len(rows), -1),
                     missing_p, rate_cur - rate_ref)
    features = [
        FeatureDrift(
            r.features[i].name, r.features[i].kind, r.test, float(r.statistic[i]), json_float(r.p_value[i]),
            json_float(verdict.p_adjusted[j]), json_float(verdict.effect[j]), verdict.effect_metric[j],
            bool(verdict.drifted[j]), float(rate_ref[j]), float(rate_cur[j]), r.labels[i],
            r.reference_share[i].tolist(), r.current_share[i].tolist(), verdict.reasons[j], r.notes[i],
            None if r.error is None else json_float(r.error[i]), {k: v[i] for k, v in r.distances.items()},
            float(missing_p[j]), json_float(verdict.missing_p_adjusted[j]), json_float(verdict.effect_ratio[j]),
        )
        for j, (r, i) in enumerate(rows)
    ]
    n_drifted = sum(f.drifted for f in features)
    return DriftReport(config.dataset_drift(n_drifted, len(features)), profile.n_rows, sketch.rows, features, ignored)


def check_columns(profile: ReferenceProfile, columns: list[str], n_rows: int) -> list[str]:
    """One-line errors for windows that cannot be compared; returns the columns that will be ignored."""
    if n_rows == 0:
        raise DriftInputError("current window is empty")
    absent = [n for n in profile.features if n not in columns]
    if absent:
        raise DriftInputError(f"current window is missing columns: {', '.join(absent)}")
    duplicated = sorted({n for n in columns if columns.count(n) > 1 and n in profile.features})
    if duplicated:
        raise DriftInputError(f"current window has duplicate columns: {', '.join(duplicated)}")
    return [str(c) for c in columns if c not in profile.features]


def evaluate_drift(
    profile: ReferenceProfile, current: pd.DataFrame, config: DriftConfig = DriftConfig()
) -> DriftReport:
    """Test every profiled feature of ``current``; columns the profile does not know are listed, not tested."""
    import pandas as pd

    if not isinstance(current, pd.DataFrame):
        raise DriftInputError(f"current window must be a pandas DataFrame, got {type(current).__name__}")
    ignored = check_columns(profile, list(current.columns), len(current))
    sketch = WindowSketch(profile)
    try:
        sketch.add({name: current[name] for name in profile.features}, len(current))
    except SketchInputError as error:
        raise DriftInputError(str(error)) from None
    return report_from_sketch(profile, sketch, config, ignored)


def evaluate_parquet(profile: ReferenceProfile, path: str | Path, config: DriftConfig = DriftConfig(),
                     batch_size: int | None = None) -> DriftReport:
    """Stream a Parquet window in record batches: memory is one batch, however large the file
    (watchkeeper.files.evaluate_file, which also reads CSV)."""
    from watchkeeper.files import evaluate_file, open_file

    return evaluate_file(profile, open_file(path), config, batch_size=batch_size)
