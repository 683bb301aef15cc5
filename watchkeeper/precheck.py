"""The cheap path of data quality: a vectorised pre-check that clears healthy windows without GX.

Great Expectations costs about 5 ms per expectation whatever the number of rows, so a
20-feature window spends ~0.3 s in it, most of a healthy window's evaluation. Most windows are
healthy. The pre-check computes, with a few numpy passes over the window, every quantity the
suite (watchkeeper.quality) judges: columns present, numeric dtypes, the share of values outside
each widened range, null rates, the share of values outside the reference categories, the row
count. It uses the suite's own limits (`null_limits`, `range_limits`, `allowed_categories`), so
the two cannot disagree on what a limit is.

It only ever *clears*: a window is clear when every share is below half its warning limit and
nothing is of a kind it does not reason about (a dtype that is not a plain numpy number, a
missing column, too few rows). Anything else goes to the full suite, which then gives the
verdict and its wording, as before. A clear window passes the suite by construction (each share
is under its limit), so the verdicts are those of GX alone (tests/test_precheck.py checks it on
the demo's windows and on planted bad windows of every kind). A small share of clear windows is
audited by the full suite anyway (`audited`), chosen by a hash of model and day, so a drift
between the two paths would show in the stored results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from watchkeeper.profile import CATEGORICAL, NUMERIC, ReferenceProfile
from watchkeeper.quality import (
    NUMERIC_TYPES,
    QualityResult,
    QualitySuite,
    QualityTolerance,
    allowed_categories,
    null_limits,
    range_limits,
)

HEADROOM = 0.5        # a share must stay below this fraction of its warning limit to clear
AUDIT_SHARE = 0.02    # clear windows validated by GX anyway, to keep the two paths honest
_PLAIN_NUMBERS = frozenset(t for t in NUMERIC_TYPES if not t.endswith("Dtype"))


@dataclass(frozen=True)
class PreCheck:
    """The suite's limits as arrays: numeric columns checked together, categorical ones by set."""

    names: list[str]
    numeric: list[str]
    low: np.ndarray
    high: np.ndarray
    range_warning: np.ndarray         # +inf where the suite has no range expectation
    null_warning: dict[str, float]
    categories: dict[str, tuple[list, float]]   # column -> (allowed values, warning share)
    min_rows: int
    max_rows: int | None

    @classmethod
    def fit(cls, profile: ReferenceProfile, tolerance: QualityTolerance = QualityTolerance()) -> PreCheck:
        features = list(profile.features.values())
        numeric = [f for f in features if f.kind == NUMERIC]
        ranges = [range_limits(f, tolerance) for f in numeric]
        categories = {}
        for f in features:
            allowed = allowed_categories(f) if f.kind == CATEGORICAL else None
            if allowed is not None:
                categories[f.name] = (allowed, tolerance.category_warning)
        return cls(
            names=profile.feature_names(), numeric=[f.name for f in numeric],
            low=np.array([r[0] if r else -np.inf for r in ranges]),
            high=np.array([r[1] if r else np.inf for r in ranges]),
            range_warning=np.array([r[2] if r else np.inf for r in ranges]),
            null_warning={f.name: null_limits(f, tolerance)[0] for f in features},
            categories=categories, min_rows=max(1, tolerance.min_rows), max_rows=tolerance.max_rows)

    def clear(self, frame: pd.DataFrame) -> bool:
        """True when the full suite would find nothing: every share well below its warning limit."""
        n = len(frame)
        if n < self.min_rows or (self.max_rows is not None and n > self.max_rows):
            return False
        if not set(self.names) <= set(frame.columns):
            return False
        if any(frame[c].dtype.name not in _PLAIN_NUMBERS for c in self.numeric):
            return False
        return self._numbers_clear(frame, n) and self._categories_clear(frame, n)

    def _numbers_clear(self, frame: pd.DataFrame, n: int) -> bool:
        if not self.numeric:
            return True
        values = frame[self.numeric].to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        present = n - missing.sum(axis=0)
        with np.errstate(invalid="ignore"):
            outside = ((values < self.low) | (values > self.high)).sum(axis=0)
        outside_share = np.divide(outside, present, out=np.zeros(len(self.numeric)), where=present > 0)
        null_limit = np.array([self.null_warning[c] for c in self.numeric])
        return bool(np.all(outside_share < HEADROOM * self.range_warning)
                    and np.all(missing.sum(axis=0) / n < HEADROOM * null_limit))

    def _categories_clear(self, frame: pd.DataFrame, n: int) -> bool:
        for column in (c for c in self.names if c not in self.numeric):
            series = frame[column]
            missing = series.isna()
            if missing.sum() / n >= HEADROOM * self.null_warning[column]:
                return False
            if column in self.categories:
                allowed, warning = self.categories[column]
                present = series[~missing]
                if len(present) and (~present.isin(allowed)).sum() / len(present) >= HEADROOM * warning:
                    return False
        return True


def audited(key: str, share: float = AUDIT_SHARE) -> bool:
    """Whether the window named `key` (model and day) is validated by GX although it is clear."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def validate_window(profile: ReferenceProfile, frame: pd.DataFrame, key: str,
                    tolerance: QualityTolerance = QualityTolerance(), audit_share: float = AUDIT_SHARE,
                    hidden: frozenset[str] = frozenset()) -> QualityResult:
    """The window's data quality: the pre-check's clear pass, or the full suite's verdict (which
    gives no example values of the `hidden`, sensitive, columns)."""
    if PreCheck.fit(profile, tolerance).clear(frame) and not audited(key, audit_share):
        return QualityResult(len(frame), [])
    return QualitySuite(tolerance, hidden=hidden).fit(profile).validate(frame)
