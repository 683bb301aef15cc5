"""Multivariate drift: changes in the joint distribution that per-feature tests cannot see.

Two detectors share one interface: ``fit`` on the reference, ``score(window) -> MultivariateResult``.

* ``PCADriftDetector`` models the reference's correlation structure with PCA (numpy only). Rows of
  a window that leave the reference's principal subspace (a correlation that flips sign while every
  marginal stays put) have larger reconstruction errors than reference rows the model never saw.
* ``DomainClassifierDetector`` trains a classifier (scikit-learn) to tell reference rows from window
  rows. Its cross-validated ROC AUC stays near 0.5 when it can't, and it reports which features it used.

Both answer with a ROC AUC tested against its Mann-Whitney null and an effect floor ``min_auc``, so
a huge window does not alert on trivially small differences. A fitted PCA detector is plain data
(``dump_detector``/``load_detector``: JSON with arrays): nothing is ever unpickled from storage.
References: Rabanser, Günnemann & Lipton, "Failing Loudly" (NeurIPS 2019); Hanley & McNeil (1982)
for the Mann-Whitney variance of the AUC.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from watchkeeper.columns import (
    ColumnError,
    arrow_indices,
    arrow_kernel,
    float_values,
    is_arrow,
    label_positions,
    labels,
)
from watchkeeper.profile import CATEGORICAL, NUMERIC, sketch_cdf
from watchkeeper.special import normal_sf

TOP_CATEGORIES = 20  # one-hot columns per categorical; rarer or unseen labels encode as all zeros
FOLDS = 5  # cross-fitting of the domain classifier
PCA_HALVES = 2  # the PCA detector: two models, each fitted on half of the reference, scoring the other half
ERROR_QUANTILES = 1001  # the held-out reference errors are kept as this many quantiles (rank error 0.1%)
TOP_FEATURES = 5  # features reported in detail["top_features"]
FORMAT = "watchkeeper.pca_detector/2"


@dataclass
class MultivariateResult:
    method: str  # "pca_reconstruction" | "domain_classifier"
    statistic: float  # ROC AUC of window vs reference (errors for PCA, classifier scores otherwise)
    threshold: float
    p_value: float | None
    drifted: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(x: Any) -> Any:
    """Convert numpy scalars and arrays, recursively, to the Python types json.dumps accepts."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    return float(x) if isinstance(x, numbers.Real) else x


def _auc_sd(n1: np.ndarray | int, n2: np.ndarray | int) -> np.ndarray:
    """Sd of a ROC AUC between n1 and n2 exchangeable scores (the Mann-Whitney null, no ties)."""
    n1, n2 = np.asarray(n1, dtype=float), np.asarray(n2, dtype=float)
    return np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


def _auc_test(auc: float, sd: float, alpha: float, min_auc: float) -> tuple[float, float]:
    """Threshold (0.5 + z sd, at least min_auc) and one-sided p-value of an AUC whose null sd is ``sd``."""
    threshold = max(0.5 + NormalDist().inv_cdf(1 - alpha) * sd, min_auc)
    return threshold, float(normal_sf(np.array((auc - 0.5) / sd)))


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


# ---------------------------------------------------------------- encoding (shared)


@dataclass
class ColumnCode:
    """How one source column becomes numbers. A numeric column: its value winsorized at the
    reference's 0.1% and 99.9% quantiles (``low``, ``high``; missing -> ``fill``, the median), minus
    the median, over ``unit``, a power of two near that range, so that neither an outlier nor values
    near 1e308 can overflow the PCA. A categorical one: a 0/1 column per kept label. Each gets a
    missing-flag column when the reference has gaps."""

    name: str
    kind: str
    fill: float = 0.0
    labels: list[str] = field(default_factory=list)
    flag: bool = False
    low: float = 0.0
    high: float = 0.0
    unit: float = 1.0

    @property
    def width(self) -> int:
        return (1 if self.kind == NUMERIC else len(self.labels)) + self.flag


def _column(table: Any, name: str) -> Any:
    return table[name]


def n_rows(table: Any) -> int:
    """Rows of a DataFrame or of a mapping of equal-length columns."""
    return len(table) if hasattr(table, "columns") else len(next(iter(table.values()))) if table else 0


class Encoder:
    """Turns a table (a pandas DataFrame or a mapping of pandas/numpy/Arrow columns) into a float matrix."""

    def __init__(self, codes: list[ColumnCode]) -> None:
        self.codes = codes
        self.groups = np.repeat(np.arange(len(codes)), [c.width for c in codes])  # source column of each output

    @classmethod
    def fit(cls, table: Any, kinds: Mapping[str, str]) -> Encoder:
        codes = []
        for name, kind in kinds.items():
            column = _column(table, name)
            if kind == NUMERIC:
                x = _numbers(name, column)
                present = x[~np.isnan(x)]
                fill, low, high = np.quantile(present, [0.5, 0.001, 0.999]) if present.size else (0.0, 0.0, 0.0)
                with np.errstate(over="ignore"):
                    reach = min(max(abs(high - fill), abs(fill - low)), np.finfo(float).max)
                codes.append(ColumnCode(str(name), NUMERIC, float(fill), flag=present.size < len(x), low=float(low),
                                        high=float(high), unit=float(np.ldexp(1.0, np.frexp(reach)[1]))))
            else:
                values = labels(column)
                present = values[values != None]  # noqa: E711 (elementwise on an object array)
                kept, counts = np.unique(present.astype(str), return_counts=True) if present.size else ([], [])
                top = [str(kept[i]) for i in np.lexsort((kept, -np.asarray(counts)))[:TOP_CATEGORIES]]
                codes.append(ColumnCode(str(name), CATEGORICAL, labels=top, flag=present.size < len(values)))
        return cls(codes)

    def transform(self, table: Any) -> np.ndarray:
        """The encoded rows, one float64 column per output (written in place: no stack, no copy)."""
        out = np.empty((n_rows(table), len(self.groups)), dtype=np.float64)
        at = 0
        for code in self.codes:
            column = _column(table, code.name)
            if code.kind == NUMERIC:
                x = _numbers(code.name, column)
                missing = np.isnan(x)
                out[:, at] = (np.clip(np.where(missing, code.fill, x), code.low, code.high) - code.fill) / code.unit
            else:
                position = label_positions(column, code.labels)
                missing = position == -2
                out[:, at:at + len(code.labels)] = position[:, None] == np.arange(len(code.labels))
            at += code.width
            if code.flag:
                out[:, at - 1] = missing
        return out

    def check(self, table: Any) -> None:
        """One-line ValueError if the current window cannot be encoded."""
        if not hasattr(table, "columns") and not isinstance(table, Mapping):
            raise ValueError(f"current window must be a pandas DataFrame, got {type(table).__name__}")
        if n_rows(table) == 0:
            raise ValueError("current window is empty")
        names = [str(c) for c in (table.columns if hasattr(table, "columns") else table)]
        absent = [c.name for c in self.codes if c.name not in names]
        if absent:
            raise ValueError(f"current window is missing columns: {', '.join(absent)}")
        duplicated = sorted({n for n in names if names.count(n) > 1 and n in {c.name for c in self.codes}})
        if duplicated:
            raise ValueError(f"current window has duplicate columns: {', '.join(duplicated)}")


def _numbers(name: str, column: Any) -> np.ndarray:
    """Float copy of a column with ±inf counted as missing, as the profile counts them."""
    try:
        x = np.asarray(float_values(name, column), dtype=np.float64)
    except ColumnError:
        raise ValueError(f"column {name!r} holds non-numeric values") from None
    return np.where(np.isfinite(x), x, np.nan)


def _reference_encoder(reference: Any, kinds: Mapping[str, str] | None, min_rows: int) -> Encoder:
    if not (hasattr(reference, "columns") or isinstance(reference, Mapping)) or n_rows(reference) < min_rows:
        raise ValueError(f"reference must be a DataFrame with at least {min_rows} rows")
    if hasattr(reference, "columns") and reference.columns.duplicated().any():
        raise ValueError("reference has duplicate columns")
    if kinds is None:
        from watchkeeper.profile import infer_kinds

        kinds = infer_kinds(reference)
    varying = {name: kind for name, kind in kinds.items() if _varies(name, kind, _column(reference, name))}
    if not varying:
        raise ValueError("reference has no non-constant columns")
    return Encoder.fit(reference, varying)


def _varies(name: str, kind: str, column: Any) -> bool:
    """More than one distinct value, missing counting as one: columns constant in the reference carry
    no joint structure."""
    if kind == CATEGORICAL:
        return len(set(labels(column).tolist())) > 1
    x = _numbers(name, column)
    present = x[~np.isnan(x)]
    return bool(present.size and present.min() != present.max()) or 0 < present.size < len(x)


def _top_features(names: list[str], scores: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(-scores, kind="stable")[:TOP_FEATURES]
    return [{"feature": str(names[i]), "score": float(scores[i])} for i in order]


def _sample_rows(rows: int, max_rows: int, rng: np.random.Generator) -> np.ndarray | None:
    return None if rows <= max_rows else np.sort(rng.choice(rows, max_rows, replace=False))


def subsample(table: Any, max_rows: int, seed: int = 0) -> Any:
    """A uniform random subset of at most ``max_rows`` rows of a table, in their order (the table
    itself when it is no longer)."""
    return _take(table, _sample_rows(n_rows(table), max_rows, np.random.default_rng(seed)))


def _take(table: Any, rows: np.ndarray | None) -> Any:
    if rows is None:
        return table
    if hasattr(table, "iloc"):
        return table.iloc[rows]

    def rows_of(column: Any) -> Any:
        if isinstance(column, np.ndarray):
            return column[rows]
        return arrow_kernel("take", column, arrow_indices(rows)) if is_arrow(column) else column.take(arrow_indices(rows))

    return {name: rows_of(column) for name, column in table.items()}


# ---------------------------------------------------------------- PCA reconstruction error


@dataclass
class _Half:
    """One PCA model: standardisation and principal axes, fitted on half of the reference."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,) sd, 1 for a column constant in this half
    components: np.ndarray  # (k, d)

    def squared_residuals(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return (z - (z @ self.components.T) @ self.components) ** 2


def _principal_axes(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variances (descending) and unit axes (rows) of standardised data, from its d x d scatter
    matrix: n d^2 work in one matrix product instead of an SVD of the n x d data."""
    values, vectors = np.linalg.eigh(z.T @ z)
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1].T


def _fit_half(x: np.ndarray, k: int) -> _Half:
    mean, sd = x.mean(axis=0), x.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    return _Half(mean, scale, _principal_axes((x - mean) / scale)[1][:k])


class PCADriftDetector:
    """Reconstruction errors of a window's rows through a PCA of the reference, against held-out ones.

    ``fit`` splits the (encoded) reference in two random halves and fits a PCA on each (standardised,
    keeping the components that explain ``variance`` of it, but always fewer than the data's rank: a
    PCA that keeps every direction reconstructs every row exactly and sees nothing). Each model
    scores the half it did not see, and a window's rows are shared between the two models at random,
    so that under no drift a window row and a held-out reference row scored by the same model are
    draws from one distribution. ``score`` compares them per model and pools (van Elteren's
    stratified Mann-Whitney): the statistic is the ROC AUC of the window's errors against the
    reference's (the share of pairs where the window's row is worse, ties half), with null sd
    sqrt(sum w_h^2 (n1_h + n2_h + 1) / (12 n1_h n2_h)) for weights w_h = the window's share per model.
    Being rank-based it holds with heavy-tailed errors (rare one-hot labels, outliers), where the
    previous mean-of-squares statistic and its moment-based null gave p ~ 0 on two samples of one
    distribution. The window drifts when p < alpha and the AUC is at least ``min_auc`` (0.55, as
    the domain classifier: a huge window must not alert on a trivial difference).

    The held-out errors are kept as ERROR_QUANTILES quantiles per model, so the fitted detector is
    a few arrays, stored as JSON (dump_detector). Rows are treated as exchangeable, so a stream
    autocorrelated within a window alerts more often than ``alpha``.

    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, .9], [.9, 1]], 2000), columns=["a", "b"])
    >>> det = PCADriftDetector().fit(ref)
    >>> det.score(ref.assign(b=-ref.b).sample(500, random_state=0)).drifted
    True
    """

    method = "pca_reconstruction"

    def __init__(self, variance: float = 0.9, alpha: float = 0.01, min_auc: float = 0.55, seed: int = 0):
        self.variance = variance
        self.alpha = alpha
        self.min_auc = min_auc
        self.seed = seed

    def fit(self, reference: Any, window_size: int | None = None,
            kinds: Mapping[str, str] | None = None) -> PCADriftDetector:
        """Fit on a DataFrame (kinds inferred) or a mapping of columns with their ``kinds``;
        ``window_size`` sets ``threshold_``, the AUC a window of that size must reach."""
        _check_alpha(self.alpha)
        if not 0 < self.variance < 1:
            raise ValueError(f"variance must be in (0, 1), got {self.variance}")
        self.encoder_ = _reference_encoder(reference, kinds, 4 * PCA_HALVES)
        x = self.encoder_.transform(reference)
        z = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        variances = _principal_axes(z)[0]
        rank = int((variances > variances[0] * max(z.shape) * 1e-12).sum()) if variances[0] > 0 else 0
        if rank < 2:
            raise ValueError("PCA drift needs at least two encoded features that vary independently")
        explained = np.cumsum(variances) / np.sum(variances)
        self.n_components_ = min(int(np.searchsorted(explained, self.variance) + 1), rank - 1,
                                 len(x) // PCA_HALVES - 1)
        self.explained_variance_ = float(explained[self.n_components_ - 1])
        half = np.random.default_rng(self.seed).permutation(len(x)) % PCA_HALVES
        self.halves_ = [_fit_half(x[half == h], self.n_components_) for h in range(PCA_HALVES)]
        held_out = np.empty_like(x)
        for h in range(PCA_HALVES):  # model h scores the rows it did not see
            held_out[half != h] = self.halves_[h].squared_residuals(x[half != h])
        rows = held_out.mean(axis=1)
        probs = np.linspace(0, 1, ERROR_QUANTILES)
        self.error_quantiles_ = np.array([np.quantile(rows[half != h], probs) for h in range(PCA_HALVES)])
        self.n_held_out_ = np.array([int((half != h).sum()) for h in range(PCA_HALVES)])
        self.column_error_ = held_out.mean(axis=0)  # baseline for per-feature attribution
        self.threshold_ = None if window_size is None else self._test(0.5, self._shares(int(window_size)))[1]
        return self

    def _shares(self, n: int) -> np.ndarray:
        """Rows of an n-row window per model: drawn at random, as score() draws them."""
        return np.bincount(np.random.default_rng(self.seed + 1).integers(0, PCA_HALVES, n), minlength=PCA_HALVES)

    def _test(self, auc: float, per_model: np.ndarray) -> tuple[float, float, float]:
        """Pooled null sd, threshold and p-value for a window with ``per_model`` rows per model."""
        used = per_model > 0
        weights = per_model[used] / per_model.sum()
        sd = float(np.sqrt(np.sum(weights**2 * _auc_sd(self.n_held_out_[used], per_model[used]) ** 2)))
        return (sd, *_auc_test(auc, sd, self.alpha, self.min_auc))

    def score(self, current: Any) -> MultivariateResult:
        self.encoder_.check(current)
        x = self.encoder_.transform(current)
        which = np.random.default_rng(self.seed + 1).integers(0, PCA_HALVES, len(x))
        squared = np.empty_like(x)
        auc_per_model = np.zeros(PCA_HALVES)
        for h in range(PCA_HALVES):
            squared[which == h] = self.halves_[h].squared_residuals(x[which == h])
            errors = squared[which == h].mean(axis=1)
            if errors.size:
                below = sketch_cdf(self.error_quantiles_[h], errors, left=True)
                auc_per_model[h] = np.mean((below + sketch_cdf(self.error_quantiles_[h], errors)) / 2)
        per_model = np.bincount(which, minlength=PCA_HALVES)
        auc = float(np.sum(auc_per_model * per_model) / len(x))
        sd, threshold, p = self._test(auc, per_model)
        excess = np.bincount(self.encoder_.groups, squared.mean(axis=0) - self.column_error_,
                             minlength=len(self.encoder_.codes))
        detail = {
            "n_rows": len(x), "n_reference": int(self.n_held_out_.sum()), "n_components": self.n_components_,
            "explained_variance": self.explained_variance_, "n_encoded_features": int(x.shape[1]),
            "mean_error": float(squared.mean()), "reference_median_error": float(np.median(self.error_quantiles_[:, ERROR_QUANTILES // 2])),
            "null_sd": sd, "min_auc": self.min_auc,
            "top_features": _top_features([c.name for c in self.encoder_.codes], excess),
        }
        return MultivariateResult(self.method, auc, threshold, p, p < self.alpha and auc >= self.min_auc, detail)


# ---------------------------------------------------------------- stored as data


def dump_detector(detector: PCADriftDetector) -> str:
    """A fitted PCA detector as JSON text for the monitoring store: parameters, encoder, arrays.

    Data, never pickle: a row of the store can describe a detector but never run code.
    """
    state = {
        "format": FORMAT, "variance": detector.variance, "alpha": detector.alpha, "min_auc": detector.min_auc,
        "seed": detector.seed, "n_components": detector.n_components_, "explained_variance": detector.explained_variance_,
        "n_held_out": detector.n_held_out_.tolist(), "threshold": detector.threshold_,
        "codes": [asdict(c) for c in detector.encoder_.codes],
        "halves": [{"mean": h.mean.tolist(), "scale": h.scale.tolist(), "components": h.components.tolist()}
                   for h in detector.halves_],
        "error_quantiles": detector.error_quantiles_.tolist(), "column_error": detector.column_error_.tolist(),
    }
    return json.dumps(state, allow_nan=False)


def load_detector(text: str) -> PCADriftDetector:
    """A detector stored by dump_detector; ValueError (one line) when the text is not one."""
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} (written by another version? refit the reference)")
        detector = PCADriftDetector(float(state["variance"]), float(state["alpha"]), float(state["min_auc"]),
                                    int(state["seed"]))
        codes = [ColumnCode(str(c["name"]), str(c["kind"]), float(c["fill"]), [str(x) for x in c["labels"]],
                            bool(c["flag"]), float(c["low"]), float(c["high"]), float(c["unit"])) for c in state["codes"]]
        detector.encoder_ = Encoder(codes)
        width = int(sum(c.width for c in codes))
        k = int(state["n_components"])
        detector.halves_ = [_Half(*(_array(h[key], shape) for key, shape in
                                    (("mean", (width,)), ("scale", (width,)), ("components", (k, width)))))
                            for h in state["halves"]]
        detector.error_quantiles_ = _array(state["error_quantiles"], (PCA_HALVES, ERROR_QUANTILES))
        detector.column_error_ = _array(state["column_error"], (width,))
        detector.n_held_out_ = _array(state["n_held_out"], (PCA_HALVES,)).astype(int)
        detector.n_components_ = k
        detector.explained_variance_ = float(state["explained_variance"])
        detector.threshold_ = None if state["threshold"] is None else float(state["threshold"])
        bounds = np.array([[c.fill, c.low, c.high, c.unit] for c in codes], dtype=float).reshape(-1, 4)
        valid = (all(c.kind in (NUMERIC, CATEGORICAL) for c in codes) and len(detector.halves_) == PCA_HALVES
                 and np.isfinite(bounds).all() and (bounds[:, 1] <= bounds[:, 2]).all() and (bounds[:, 3] > 0).all()
                 and 0 < k < width and np.all(detector.n_held_out_ > 0)
                 and np.all(np.diff(detector.error_quantiles_, axis=1) >= 0)
                 and all(np.all(h.scale > 0) for h in detector.halves_))
        if not valid:
            raise ValueError("inconsistent fields")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"stored PCA detector is malformed: {' '.join(str(error).split())}") from None
    return detector


def _array(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape or not np.isfinite(array).all():
        raise ValueError(f"expected {shape} finite numbers, got {array.shape}")
    return array


# ---------------------------------------------------------------- domain classifier


def _permutation_drop(model: Any, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """AUC lost when one source feature is shuffled. A feature's encoded columns (its one-hot
    columns and missing flag) are shuffled together, which is the same as shuffling the raw column."""
    from sklearn.metrics import roc_auc_score

    base = roc_auc_score(y, model.predict_proba(x)[:, 1])
    drops = np.zeros(groups.max() + 1)
    for g in range(len(drops)):
        shuffled, cols = x.copy(), groups == g
        shuffled[:, cols] = x[rng.permutation(len(x))][:, cols]
        drops[g] = base - roc_auc_score(y, model.predict_proba(shuffled)[:, 1])
    return drops


class DomainClassifierDetector:
    """Cross-validated ROC AUC of a classifier trained to tell reference rows from current rows.

    Classifier: ``HistGradientBoostingClassifier``. Logistic regression only separates means along
    a direction, so it is blind to variance changes and broken interactions. Those are the cases
    univariate tests miss, and trees handle them. Early stopping keeps the cost low when there is
    nothing to learn. The cost is bounded: ``max_rows`` caps each side and ``folds`` fits run on at
    most ``2 * max_rows`` rows, on one OpenMP thread (on shared cores, spin-waiting threads made a
    score 6 to 13 times slower than one thread did). Permutation importances, the costly part (one
    prediction per feature and fold), are computed only for a drifted window (``importance="drifted"``)
    or always (``"always"``).

    Threshold: under no drift the out-of-fold scores are exchangeable between the two groups. The
    AUC then follows the Mann-Whitney null, with mean 0.5 and sd ``sqrt((n1 + n2 + 1) / (12 n1 n2))``,
    where n1 and n2 are the rows actually used from each side. Cross-validation biases the null AUC
    slightly below 0.5, and score ties shrink its variance, so the test is conservative. The
    threshold is ``max(0.5 + z * sd, min_auc)`` with ``z = Φ⁻¹(1 - alpha)``: a large window makes the
    sd tiny, and ``min_auc`` then stops it alerting on trivially small separability.
    """

    method = "domain_classifier"

    def __init__(self, alpha: float = 0.01, min_auc: float = 0.55, max_rows: int = 20000, seed: int = 0,
                 folds: int = FOLDS, importance: str = "drifted"):
        self.alpha = alpha
        self.min_auc = min_auc
        self.max_rows = max_rows
        self.seed = seed
        self.folds = folds
        self.importance = importance

    def fit(self, reference: Any, kinds: Mapping[str, str] | None = None) -> DomainClassifierDetector:
        _check_alpha(self.alpha)
        if self.max_rows < self.folds or self.folds < 2:
            raise ValueError(f"need 2 <= folds <= max_rows, got folds={self.folds}, max_rows={self.max_rows}")
        if self.importance not in ("drifted", "always"):
            raise ValueError(f"importance must be 'drifted' or 'always', got {self.importance!r}")
        self.encoder_ = _reference_encoder(reference, kinds, self.folds)
        rng = np.random.default_rng(self.seed)
        self.reference_ = self.encoder_.transform(_take(reference, _sample_rows(n_rows(reference), self.max_rows, rng)))
        return self

    def score(self, current: Any) -> MultivariateResult:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold
        from threadpoolctl import threadpool_limits

        self.encoder_.check(current)
        if n_rows(current) < self.folds:
            raise ValueError(f"current window needs at least {self.folds} rows for {self.folds}-fold cross-validation")
        rng = np.random.default_rng(self.seed)
        cur = self.encoder_.transform(_take(current, _sample_rows(n_rows(current), self.max_rows, rng)))
        x = np.vstack([self.reference_, cur])
        y = np.r_[np.zeros(len(self.reference_)), np.ones(len(cur))]
        oof, models = np.empty(len(y)), []
        with threadpool_limits(1, user_api="openmp"):
            for train, test in StratifiedKFold(self.folds, shuffle=True, random_state=self.seed).split(x, y):
                model = HistGradientBoostingClassifier(early_stopping=True, random_state=self.seed).fit(x[train], y[train])
                oof[test] = model.predict_proba(x[test])[:, 1]
                models.append((model, test))
            auc = float(roc_auc_score(y, oof))
            sd = float(_auc_sd(len(self.reference_), len(cur)))
            threshold, p = _auc_test(auc, sd, self.alpha, self.min_auc)
            drifted = auc >= threshold
            detail = {"n_reference": len(self.reference_), "n_current": len(cur), "null_sd": sd,
                      "min_auc": self.min_auc, "folds": self.folds}
            if drifted or self.importance == "always":
                groups = self.encoder_.groups
                drops = sum(_permutation_drop(m, x[t], y[t], groups, rng) for m, t in models) / self.folds
                detail["top_features"] = _top_features([c.name for c in self.encoder_.codes], drops)
        return MultivariateResult(self.method, auc, threshold, p, drifted, detail)
