"""Reference profiles: small, JSON-serialisable, mergeable summaries of a training/reference frame.

A profile replaces the raw reference data at drift time, so it must be small (a few KB per
feature), exact where cheap (counts, moments, min/max) and bounded-error where not (quantiles).

Small references also keep their sorted values (at most EXACT_VALUES_MAX, a few KB) so that small
windows get scipy's exact two-sample KS test instead of the sketch's approximation.

Quantile sketch: each numeric feature keeps its values at ``np.linspace(0, 1, QUANTILE_POINTS)``.
The reference CDF is read back by piecewise-linear interpolation between those knots. Between two
adjacent knots the true CDF lies within the knots' probabilities, so the interpolated CDF is off by
at most ``1 / (QUANTILE_POINTS - 1) = 0.005`` in rank. That bounds the extra error in the KS
statistic computed against the sketch.
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a frame is read: `watchkeeper drift` on files never needs it
    import pandas as pd

from watchkeeper.frames import column_name_problem

NUMERIC, CATEGORICAL = "numeric", "categorical"
QUANTILE_POINTS = 201
SKETCH_RANK_ERROR = 1.0 / (QUANTILE_POINTS - 1)
PSI_BINS = 10
MAX_CATEGORIES = 50
OTHER = "__other__"
LOW_CARDINALITY = 10  # numeric columns with at most this many distinct values are codes/flags
EXACT_VALUES_MAX = 500  # a reference column this small keeps its values: no bigger than its sketch
SCHEMA_VERSION = 2  # bump when the serialised form changes; from_dict refuses newer versions
# Fewer reference rows than this cannot support a drift verdict: with 50, KS tells a one-standard-
# deviation shift from a 5,000-row window in 200 of 200 trials at p < 0.01/40 (20 features, two
# signals each), with 20 rows in only half of them, and with 1 row never (p = 1, largest effect).
MIN_REFERENCE_ROWS = 50



class ProfileError(ValueError):
    """A reference that cannot be profiled, or a saved profile that breaks its schema (one line)."""


_PROBS = np.linspace(0.0, 1.0, QUANTILE_POINTS)
_DECILES = np.linspace(0.0, 1.0, PSI_BINS + 1)[1:-1]


@dataclass
class FeatureProfile:
    """Summary of one reference column; numeric and categorical fields are mutually exclusive."""

    name: str
    kind: str  # NUMERIC | CATEGORICAL
    count: int  # non-missing values
    missing: int  # NaN/None/NaT, and ±inf (never a valid measurement)
    mean: float | None = None
    m2: float | None = None  # sum of squared deviations: merges exactly (Chan et al.)
    min: float | None = None
    max: float | None = None
    quantiles: list[float] | None = None  # values at np.linspace(0, 1, QUANTILE_POINTS)
    bin_edges: list[float] | None = None  # deduplicated inner decile edges; bins are right-closed
    bin_counts: list[int] | None = None  # len(bin_edges) + 1 counts, outer bins open-ended
    categories: dict[str, int] | None = None  # label -> count, tail folded into OTHER
    exact_values: list[float] | None = None  # sorted finite values when count <= EXACT_VALUES_MAX

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1), as pandas reports it."""
        if self.m2 is None or self.count < 2:
            return None
        return math.sqrt(self.m2 / (self.count - 1))

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


@dataclass
class ReferenceProfile:
    """All feature profiles of a reference frame plus free-form metadata (model name, version...)."""

    features: dict[str, FeatureProfile]
    n_rows: int
    metadata: dict[str, str] = field(default_factory=dict)

    def feature_names(self) -> list[str]:
        return list(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "n_rows": self.n_rows,
            "metadata": dict(self.metadata),
            "features": [asdict(f) for f in self.features.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        """Load a saved profile, checked against its schema and invariants (ProfileError, one line)."""
        from watchkeeper.profile_schema import decode_profile  # the schema module reads this one's constants

        return decode_profile(d)

    def to_json(self, path: str | Path) -> None:
        """JSON rather than pickle: profiles outlive code versions and must be safe to load."""
        Path(path).write_text(json.dumps(self.to_dict(), allow_nan=False), encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path) -> ReferenceProfile:
        """from_dict on a JSON file; every problem is a ProfileError naming the file."""
        try:
            data = json.loads(Path(path).read_bytes().decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ProfileError(f"{path}: not UTF-8 text (byte {error.start})") from None
        except json.JSONDecodeError as error:
            raise ProfileError(f"{path}: not JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
        except OSError as error:
            raise ProfileError(f"{path}: cannot be read ({error.strerror or error})") from None
        try:
            return cls.from_dict(data)
        except ProfileError as error:
            raise ProfileError(f"{path}: not a valid Watchkeeper profile: {error}") from None

    def require_rows(self, minimum: int = MIN_REFERENCE_ROWS) -> None:
        """Refuse a reference too small to support a drift verdict (see MIN_REFERENCE_ROWS)."""
        if self.n_rows < minimum:
            raise ProfileError(f"the reference has {self.n_rows} rows; at least {minimum} are needed to test drift "
                               "(docs/drift.md, 'How small a reference')")


# ---------------------------------------------------------------- value extraction (shared with drift)


def finite_sorted(series: pd.Series) -> tuple[np.ndarray, int]:
    """Sorted finite values and the missing count (NaN/None/NaT/±inf); ValueError on non-numbers."""
    import pandas as pd

    na = series.isna().to_numpy()
    try:
        values = pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"column {series.name!r} holds non-numeric values") from exc
    values = values[~na]
    finite = values[np.isfinite(values)]
    finite.sort()
    return finite, len(series) - len(finite)


def category_label(value: Any) -> str | None:
    """Canonical string of a category so 1, 1.0 and np.int64(1) match across windows; None if missing."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return None
        return str(int(v)) if v.is_integer() else repr(v)
    return str(value)


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Counts per canonical label (most frequent first) and the missing count."""
    try:
        raw = series.value_counts(dropna=True, sort=False)
    except TypeError:  # lists or mappings in an object column: not categories
        raise ProfileError(f"column {series.name!r} holds lists or mappings, which are not categories") from None
    counts: Counter[str] = Counter()
    for value, n in zip(raw.index, raw.to_numpy()):
        label = category_label(value)
        if label is not None:
            counts[label] += int(n)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return ordered, len(series) - sum(ordered.values())


def bin_counts(sorted_values: np.ndarray, edges: Iterable[float]) -> np.ndarray:
    """Counts in bins (-inf,e0], (e0,e1], ..., (e_last,inf) of already-sorted values."""
    cum = np.searchsorted(sorted_values, np.asarray(edges, dtype=float), side="right")
    return np.diff(np.concatenate(([0], cum, [len(sorted_values)])))


def sketch_cdf(quantiles: Iterable[float], x: np.ndarray, left: bool = False) -> np.ndarray:
    """Piecewise-linear CDF through the sketch knots; ``left`` gives left limits at tied knots."""
    q = np.asarray(quantiles, dtype=float)
    p = np.linspace(0.0, 1.0, len(q))
    x = np.asarray(x, dtype=float)
    i = np.searchsorted(q, x, side="left" if left else "right")
    lo = np.clip(i - 1, 0, len(q) - 2)
    span = q[lo + 1] - q[lo]
    t = np.divide(x - q[lo], span, out=np.zeros_like(x), where=span > 0)
    f = p[lo] + t * (p[lo + 1] - p[lo])
    return np.where(i == 0, 0.0, np.where(i == len(q), 1.0, f))


# ---------------------------------------------------------------- fitting


def infer_kinds(
    df: pd.DataFrame, categorical: Iterable[str] = (), numeric: Iterable[str] = ()
) -> dict[str, str]:
    """Guess each column's kind; low-cardinality numbers are codes or flags, hence categorical."""
    import pandas as pd

    categorical, numeric = set(categorical), set(numeric)
    unknown = sorted((categorical | numeric) - set(df.columns))
    if unknown:
        raise ProfileError(f"kind overrides name unknown columns: {', '.join(unknown)}")
    if categorical & numeric:
        raise ProfileError(f"columns both categorical and numeric: {', '.join(sorted(categorical & numeric))}")
    kinds = {}
    for name in df.columns:
        s = df[name]
        if name in categorical or name in numeric:
            kinds[name] = CATEGORICAL if name in categorical else NUMERIC
        elif pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            kinds[name] = CATEGORICAL
        else:
            kinds[name] = CATEGORICAL if s.nunique(dropna=True) <= LOW_CARDINALITY else NUMERIC
    return kinds


def _sorted_quantiles(xs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """np.quantile(method='linear') on already-sorted data, without re-partitioning per point.

    Over the whole float64 range: where b - a overflows (values near -1e308 and +1e308), the
    weighted form (1 - t) a + t b is used, and every knot is kept inside its two data points.
    """
    pos = probs * (len(xs) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(xs) - 1)
    a, b, t = xs[lo], xs[hi], pos - lo
    with np.errstate(over="ignore", invalid="ignore"):
        knots = a + t * (b - a)
        wide = ~np.isfinite(knots)
        knots[wide] = (1 - t[wide]) * a[wide] + t[wide] * b[wide]
    return np.clip(knots, a, b)


def _moments(name: str, xs: np.ndarray) -> tuple[float, float]:
    """Mean and sum of squared deviations, finite for any finite data whose spread float64 can square.

    The mean is computed on scaled values when the plain sum overflows (values near 1e308). The
    sum of squares overflows only for a standard deviation beyond ~1e154: then the column is
    refused, since no drift statistic in reference standard deviations could be computed.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(xs.mean())
        if not math.isfinite(mean):
            scale = max(abs(float(xs[0])), abs(float(xs[-1])))
            mean = scale * float((xs / scale).mean())
        m2 = float(((xs - mean) ** 2).sum())
    if not math.isfinite(m2):
        raise ProfileError(f"column {name!r}: values from {xs[0]:.3g} to {xs[-1]:.3g} spread too wide for float64 "
                           "(variance overflows): drop such values or rescale the column")
    return mean, m2


def _numeric_profile(name: str, series: pd.Series) -> FeatureProfile:
    return numeric_profile(name, *finite_sorted(series))


def numeric_profile(name: str, xs: np.ndarray, missing: int) -> FeatureProfile:
    """The profile of a numeric column from its sorted finite values and its missing count
    (shared by fit_profile and the column-by-column fit of watchkeeper.files)."""
    if len(xs) == 0:
        return FeatureProfile(name, NUMERIC, 0, missing)
    mean, m2 = _moments(name, xs)
    edges = np.unique(_sorted_quantiles(xs, _DECILES))
    return FeatureProfile(
        name, NUMERIC, len(xs), missing,
        mean=mean, m2=m2, min=float(xs[0]), max=float(xs[-1]),
        quantiles=_sorted_quantiles(xs, _PROBS).tolist(),
        bin_edges=edges.tolist(), bin_counts=bin_counts(xs, edges).tolist(),
        exact_values=xs.tolist() if len(xs) <= EXACT_VALUES_MAX else None,
    )


def _cap_categories(counts: Mapping[str, int]) -> dict[str, int]:
    """Keep the MAX_CATEGORIES most frequent labels; fold the tail (and any old OTHER) into OTHER."""
    ranked = sorted(((k, v) for k, v in counts.items() if k != OTHER), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:MAX_CATEGORIES])
    other = counts.get(OTHER, 0) + sum(v for _, v in ranked[MAX_CATEGORIES:])
    return kept | ({OTHER: other} if other else {})


def _categorical_profile(name: str, series: pd.Series) -> FeatureProfile:
    return categorical_profile(name, *category_counts(series))


def categorical_profile(name: str, counts: Mapping[str, int], missing: int) -> FeatureProfile:
    """The profile of a categorical column from its label counts and missing count."""
    capped = _cap_categories(counts)
    return FeatureProfile(name, CATEGORICAL, sum(counts.values()), missing, categories=capped)


def fit_profile(
    df: pd.DataFrame, kinds: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None
) -> ReferenceProfile:
    """Profile the columns named in ``kinds`` (default: all, kinds inferred).

    Any problem with the frame is a one-line ProfileError. The frame's size is not checked
    here (shards of any size merge); a profile used for drift is checked by require_rows.
    """
    problem = column_name_problem(df.columns)
    if problem:
        raise ProfileError(f"reference {problem}")
    kinds = dict(kinds) if kinds is not None else infer_kinds(df)
    absent = [c for c in kinds if c not in df.columns]
    if absent:
        raise ProfileError(f"reference frame is missing columns: {', '.join(map(str, absent))}")
    bad = {k for k in kinds.values() if k not in (NUMERIC, CATEGORICAL)}
    if bad:
        raise ProfileError(f"unknown feature kinds: {', '.join(sorted(bad))}")
    build = {NUMERIC: _numeric_profile, CATEGORICAL: _categorical_profile}
    features = {str(c): build[k](str(c), df[c]) for c, k in kinds.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    return ReferenceProfile(features, len(df), meta)


# ---------------------------------------------------------------- merging


def _invert_cdf(xs: np.ndarray, fs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles of a piecewise-linear, non-decreasing CDF given as points (xs, fs)."""
    i = np.clip(np.searchsorted(fs, probs, side="left"), 1, len(fs) - 1)
    rise = fs[i] - fs[i - 1]
    t = np.divide(probs - fs[i - 1], rise, out=np.zeros_like(probs), where=rise > 0)
    return xs[i - 1] + t * (xs[i] - xs[i - 1])


def _merge_quantiles(a: FeatureProfile, b: FeatureProfile) -> np.ndarray:
    """Re-read quantiles of the count-weighted mixture of both sketch CDFs.

    The mixture is piecewise linear on the union of knots (with jumps at tied knots, hence the
    left/right pairs), so it is inverted exactly. Its rank error is the inputs' weighted error, so
    merged knots stay within SKETCH_RANK_ERROR of their true rank after one merge; each further
    merge level can add up to SKETCH_RANK_ERROR in the worst case (far less on smooth data).
    """
    knots = np.unique(np.concatenate((a.quantiles, b.quantiles)))
    n = a.count + b.count

    def mix(left: bool) -> np.ndarray:
        fa, fb = sketch_cdf(a.quantiles, knots, left), sketch_cdf(b.quantiles, knots, left)
        return (a.count * fa + b.count * fb) / n

    xs = np.repeat(knots, 2)
    fs = np.column_stack((mix(True), mix(False))).ravel()
    return _invert_cdf(xs, fs, _PROBS)


def _merge_numeric(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    """Exact counts/moments (Chan et al.); sketch-based quantiles and bin counts.

    Bins keep ``a``'s edges; ``b``'s mass is re-binned through its interpolated CDF, so each
    re-binned edge is off by at most SKETCH_RANK_ERROR of ``b.count`` rows (a bin share error of at
    most 2 * SKETCH_RANK_ERROR * b.count / (a.count + b.count)). The edges are no longer deciles of
    the merged data when the shards differ, which PSI tolerates: any fixed binning is valid.
    """
    missing = a.missing + b.missing
    if not a.count or not b.count:
        base = a if a.count else b
        return FeatureProfile(**(asdict(base) | {"missing": missing}))
    n = a.count + b.count
    delta = b.mean - a.mean
    edges = np.asarray(a.bin_edges, dtype=float)
    cum_b = np.round(b.count * np.concatenate(([0.0], sketch_cdf(b.quantiles, edges), [1.0])))
    return FeatureProfile(
        a.name, NUMERIC, n, missing,
        mean=a.mean + delta * b.count / n,
        m2=a.m2 + b.m2 + delta**2 * a.count * b.count / n,
        min=min(a.min, b.min), max=max(a.max, b.max),
        quantiles=_merge_quantiles(a, b).tolist(),
        bin_edges=a.bin_edges,
        bin_counts=(np.asarray(a.bin_counts) + np.diff(cum_b).astype(int)).tolist(),
        exact_values=sorted(a.exact_values + b.exact_values) if a.exact_values and b.exact_values
        and n <= EXACT_VALUES_MAX else None,
    )


def _merge_categorical(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    """Counts add, then re-cap. A label in one shard's OTHER tail stays there: its kept count
    from the other shard is a lower bound, which only matters for labels near the cap."""
    counts = Counter(a.categories) + Counter(b.categories)
    return FeatureProfile(
        a.name, CATEGORICAL, a.count + b.count, a.missing + b.missing, categories=_cap_categories(counts)
    )


def merge_profiles(a: ReferenceProfile, b: ReferenceProfile) -> ReferenceProfile:
    """Combine profiles of disjoint shards of one dataset; fit shards with explicit, equal kinds."""
    if list(a.features) != list(b.features):
        raise ValueError("cannot merge profiles with different features")
    mismatched = [n for n, f in a.features.items() if f.kind != b.features[n].kind]
    if mismatched:
        raise ValueError(f"cannot merge profiles, kinds differ for: {', '.join(mismatched)}")
    merge = {NUMERIC: _merge_numeric, CATEGORICAL: _merge_categorical}
    features = {n: merge[f.kind](f, b.features[n]) for n, f in a.features.items()}
    return ReferenceProfile(features, a.n_rows + b.n_rows, b.metadata | a.metadata)
