"""Fold a current window, batch by batch, into the same sketch form as the reference profile.

Memory stays bounded by one batch however large the window: each batch of numeric columns is
stacked into one (features x rows) float32 block, sorted row-wise, and probed at every feature's
grid edges with one vectorised binary search. Before the cast each value is centred on the
reference median and divided by a power of two near the spread of the reference's 1%..99%
quantiles (exact in binary), so
float32 keeps ~7 significant digits of the *spread*, whatever the values' magnitude. Finite values
beyond float32's range (float64 goes to ~1.8e308) are clipped to its largest finite value: they
still count as finite values, in the outermost cells, while NaN and ±inf stay missing. What is kept
per feature is exact: cumulative counts at the grid and PSI edges, missing and ±inf counts, and the
first two moments, summed in float64 from the float64 values. Categorical columns keep label
counts. A small window (at most EXACT_KS_MAX_ROWS rows) also keeps the values of the features whose
profile kept the reference's, for an exact KS statistic.

The grid is the reference quantile sketch refined GRID_REFINE times: the reference holds at most
SKETCH_RANK_ERROR / GRID_REFINE of its mass in any cell, which bounds how far KS read at the edges
can be from KS between them (stats.ks_from_cdfs reports the actual bound per feature).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.columns import ColumnError, float_values, label_counts
from watchkeeper.parallel import parallel_map, spans
from watchkeeper.profile import (
    CATEGORICAL,
    NUMERIC,
    PSI_BINS,
    QUANTILE_POINTS,
    FeatureProfile,
    ReferenceProfile,
    sketch_cdf,
)

GRID_REFINE = 2
BLOCK_VALUES = 1 << 21  # values per numeric block (8 MB of float32): amortises the search, keeps memory small
EXACT_KS_MAX_ROWS = 10_000  # windows up to this size keep their values where the reference kept its own
_F32_MAX = float(np.finfo(np.float32).max)

SketchInputError = ColumnError  # what callers catch: a column cannot be read as its profiled kind


@dataclass(frozen=True)
class NumericGrid:
    """Per numeric feature: grid edges, the reference CDF on them, and the points to search for.

    Rows are features. Features whose reference has no values get a dummy grid and testable=False.
    """

    names: list[str]
    center: np.ndarray  # (F,) reference median, subtracted before the float32 cast
    scale: np.ndarray  # (F,) a power of two near the reference's spread, divided by before the cast
    edges: np.ndarray  # (F, G) refined reference quantiles, non-decreasing (ties allowed)
    ref_cdf: np.ndarray  # (F, G) reference sketch CDF at the edges
    testable: np.ndarray  # (F,) reference has values
    probes: np.ndarray = field(repr=False)  # (F, P) float32 search points: -inf, edges, bin edges, max, +inf

    @classmethod
    def from_features(cls, features: list[FeatureProfile]) -> NumericGrid:
        n = len(features)
        knots = np.array([f.quantiles or [0.0] * QUANTILE_POINTS for f in features], dtype=float)
        knots = knots.reshape(n, QUANTILE_POINTS)
        steps = np.linspace(0.0, 1.0, GRID_REFINE + 1)[:-1]
        with np.errstate(over="ignore", invalid="ignore"):  # knots near ±1.8e308 differ by more than float64 holds
            inner = knots[:, :-1, None] + steps * (knots[:, 1:, None] - knots[:, :-1, None])
        inner = np.where(np.isfinite(inner), inner, knots[:, :-1, None])
        edges = np.concatenate([inner.reshape(n, (QUANTILE_POINTS - 1) * GRID_REFINE), knots[:, -1:]], axis=1)
        ref_cdf = np.array([sketch_cdf(k, e) for k, e in zip(knots, edges)]).reshape(edges.shape)
        # the profile's PSI edges, padded by repeating the last one (empty bins on both sides)
        bin_edges = np.array([_padded(f.bin_edges or [0.0], PSI_BINS - 1) for f in features]).reshape(n, PSI_BINS - 1)
        center = knots[:, QUANTILE_POINTS // 2]
        scale = np.ldexp(1.0, np.frexp(_spread(knots, center))[1])
        inf = np.full((n, 1), np.inf)
        inner_probes = _scaled(np.concatenate([edges, bin_edges], axis=1), center[:, None], scale[:, None])
        probes = np.concatenate([-inf, inner_probes, np.full_like(inf, _F32_MAX), inf], axis=1)
        return cls([f.name for f in features], center, scale, edges, ref_cdf,
                   np.array([f.count > 0 for f in features], dtype=bool), probes.astype(np.float32))


def _spread(knots: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Per row, how far the reference's 1%..99% quantiles reach from the center (its whole range
    when that is 0): the bulk sets the scale, so one value near 1e300 cannot flush the rest to 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        inner = np.abs(knots[:, 2:-2] - center[:, None]).max(axis=1, initial=0.0)
        whole = np.abs(knots - center[:, None]).max(axis=1, initial=0.0)
    spread = np.where(inner > 0, inner, whole)
    return np.nan_to_num(np.minimum(spread, np.finfo(float).max), nan=0.0)


def _padded(values: list[float], size: int) -> list[float]:
    return [*values, *[values[-1]] * (size - len(values))]


def _scaled(values: np.ndarray, center: Any, scale: Any) -> np.ndarray:
    """(values - center) / scale in float64, finite ones clipped into float32's finite range."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.subtract(values, center, dtype=np.float64) / scale
    finite = np.isfinite(values)
    return np.where(finite, np.clip(np.nan_to_num(scaled, nan=0.0), -_F32_MAX, _F32_MAX), scaled)


@dataclass
class NumericState:
    """Exact per-feature accumulators of the numeric block; they add across batches."""

    rows: np.ndarray  # (F,) values seen, missing included
    cum: np.ndarray  # (F, G) finite values <= each grid edge
    bin_cum: np.ndarray  # (F, PSI_BINS - 1) finite values <= each PSI edge
    finite: np.ndarray  # (F,)
    sum: np.ndarray  # (F,) of (x - center), in float64
    sum_sq: np.ndarray  # (F,) of (x - center)**2, in float64

    @classmethod
    def empty(cls, grid: NumericGrid) -> NumericState:
        f, g = grid.edges.shape
        zeros = np.zeros(f)
        return cls(zeros.copy(), np.zeros((f, g)), np.zeros((f, PSI_BINS - 1)), zeros.copy(), zeros.copy(),
                   zeros.copy())

    @property
    def missing(self) -> np.ndarray:
        return self.rows - self.finite

    def mean_std(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample standard deviation of the finite values (NaN when undefined; inf when
        the values are so large that their squares overflow float64)."""
        n = self.finite
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mean = center + self.sum / n
            var = (self.sum_sq - self.sum**2 / n) / (n - 1)
            var = np.where(np.isinf(self.sum_sq), np.inf, var)
        return np.where(n > 0, mean, np.nan), np.where(n > 1, np.sqrt(np.clip(var, 0, None)), np.nan)


def _sorted_counts(block: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Per row, how many values of the row-sorted ``block`` are <= each probe (branch-free search)."""
    rows, width = block.shape
    flat, base = block.ravel(), (np.arange(rows) * width)[:, None]
    pos = np.zeros(probes.shape, dtype=np.int64)
    step = 1 << int(width).bit_length()
    while step:
        cand = np.minimum(pos + step, width)
        pos = np.where(flat[base + cand - 1] <= probes, cand, pos)
        step >>= 1
    return pos


def fold_numeric(grid: NumericGrid, state: NumericState, block: np.ndarray, features: Any = slice(None)) -> None:
    """Add the counts of a (features x rows) float32 block, already centred and scaled (fill_row),
    to ``state``; sorts ``block`` in place. ``features`` picks the grid rows the block holds (all of
    them by default).

    After a row sort, -inf come first, then the finite values, then +inf and NaN, so every count,
    missing values included, is one binary search against the probes. Groups of rows are sorted
    and searched on every core (each row alone decides its counts).
    """
    probes = grid.probes[features]

    def sorted_counts(rows: slice) -> np.ndarray:
        block[rows].sort(axis=1)
        return _sorted_counts(block[rows], probes[rows])

    counts = np.concatenate(list(parallel_map(sorted_counts, spans(len(block)))))
    neg_inf, upto_max = counts[:, 0], counts[:, -2]
    g = grid.edges.shape[1]
    state.rows[features] += block.shape[1]
    state.cum[features] += counts[:, 1:1 + g] - neg_inf[:, None]
    state.bin_cum[features] += counts[:, 1 + g:-2] - neg_inf[:, None]
    state.finite[features] += upto_max - neg_inf


def fill_row(row: np.ndarray, values: np.ndarray, center: float, scale: float) -> tuple[float, float]:
    """Write one column's values into a float32 block row (centred, scaled, finite values clipped
    into float32's range, NaN and ±inf kept) and return the float64 sum and sum of squares of its
    finite centred values."""
    with np.errstate(over="ignore", invalid="ignore"):
        centred = np.subtract(values, center, dtype=np.float64)
        if not np.isfinite(values).all():
            row[:] = _scaled(values, center, scale)
            centred = np.where(np.isfinite(values), centred, 0.0)
        else:
            np.clip(centred / scale, -_F32_MAX, _F32_MAX, out=row, casting="same_kind")
        # einsum, not np.dot: BLAS threads spin on a busy machine (40x slower on 50,000 values here)
        return float(centred.sum()), float(np.einsum("i,i->", centred, centred))


@dataclass
class CategoryState:
    """Label counts of one categorical feature; adds across batches."""

    counts: Counter = field(default_factory=Counter)
    rows: int = 0
    missing: int = 0


class WindowSketch:
    """The current window folded batch by batch: numeric grid counts and categorical label counts."""

    def __init__(self, profile: ReferenceProfile) -> None:
        numeric = [f for f in profile.features.values() if f.kind == NUMERIC]
        self.grid = NumericGrid.from_features(numeric)
        self.numeric = NumericState.empty(self.grid)
        self.categorical = {f.name: CategoryState() for f in profile.features.values() if f.kind == CATEGORICAL}
        self.rows = 0
        self.kept: dict[str, list[np.ndarray]] | None = {f.name: [] for f in numeric if f.exact_values}
        self._block = np.empty(0, dtype=np.float32)

    @staticmethod
    def block_rows(n_features: int) -> int:
        """Rows per numeric block (and per Parquet batch): BLOCK_VALUES values, at least 4096 rows."""
        return max(4096, BLOCK_VALUES // max(n_features, 1))

    def add(self, columns: Mapping[str, Any], n_rows: int, count_rows: bool = True) -> None:
        """Fold one batch: ``columns`` maps every profiled name to a pandas/numpy/pyarrow column, or
        only a group of them when a file is read in column groups (evaluate_file): then each group
        passes over every row, and only the first group's batches are counted (``count_rows``)."""
        index = [i for i, name in enumerate(self.grid.names) if name in columns]
        numeric = [float_values(self.grid.names[i], columns[self.grid.names[i]]) for i in index]
        step = self.block_rows(len(numeric))
        for start in range(0, n_rows if numeric else 0, step):
            stop = min(start + step, n_rows)
            block = self._buffer(len(numeric), stop - start)

            def fill(rows: slice) -> list[tuple[float, float]]:  # on every core: each row is one column
                return [fill_row(block[j], numeric[j][start:stop], self.grid.center[index[j]], self.grid.scale[index[j]])
                        for j in range(rows.start, rows.stop)]

            filled = [pair for part in parallel_map(fill, spans(len(numeric))) for pair in part]
            for i, (total, squares) in zip(index, filled):
                self.numeric.sum[i] += total
                self.numeric.sum_sq[i] += squares
            fold_numeric(self.grid, self.numeric, block, np.array(index, dtype=np.intp))
        for name, state in self.categorical.items():
            if name not in columns:
                continue
            counts, missing = label_counts(columns[name])
            state.counts.update(counts)
            state.rows += n_rows
            state.missing += missing
        if count_rows:
            self.rows += n_rows
        self._keep({self.grid.names[i]: values for i, values in zip(index, numeric)})

    def _keep(self, numeric: dict[str, np.ndarray]) -> None:
        """Hold the finite values of small windows for an exact KS; drop them past EXACT_KS_MAX_ROWS."""
        if self.kept is None or self.rows > EXACT_KS_MAX_ROWS:
            self.kept = None
            return
        for name, parts in self.kept.items():
            if name in numeric:
                values = np.asarray(numeric[name], dtype=float)
                parts.append(values[np.isfinite(values)])

    def kept_values(self) -> dict[str, np.ndarray]:
        """Sorted finite values per feature kept for an exact KS (empty for large windows)."""
        return {name: np.sort(np.concatenate(parts)) for name, parts in (self.kept or {}).items() if parts}

    def _buffer(self, n_features: int, n_rows: int) -> np.ndarray:
        """A contiguous float32 block carved from one reused buffer: a stream of batches allocates once."""
        if self._block.size < n_features * n_rows:
            self._block = np.empty(n_features * n_rows, dtype=np.float32)
        return self._block[:n_features * n_rows].reshape(n_features, n_rows)
