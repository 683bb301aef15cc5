"""Sensitive columns: their raw values never leave the rows they came in.

A column is sensitive when the monitoring config names it (``privacy.sensitive`` of a model) or
the registered model is tagged ``watchkeeper.sensitive`` (comma-separated column names). Its
values are masked the moment rows are read (the reference's training rows before they are
profiled, a window's predictions before anything else sees them), so every result downstream —
store, UI metadata, plots, alerts, tickets, logs, traces — is computed from the masked values
and cannot carry a raw one:

- text, boolean and low-cardinality numeric columns (codes): a category seen in fewer than
  ``min_count`` rows is suppressed (text: merged into ``SUPPRESSED``; numbers: made missing), so
  every label that survives describes at least ``min_count`` people;
- other numeric columns: rounded to ``SIGNIFICANT_DIGITS`` significant digits (a value is
  reported as a range of people, not one person's figure) and clipped to the ``min_count``-th
  smallest and largest values (the extremes that identify one person are never kept).

The profile keeps no exact values of a sensitive column (:func:`forget_exact_values`), and data
quality names no example value of it (watchkeeper.quality). Drift, quality and segments still work
on the masked values, so a sensitive column is still monitored, as aggregates.

>>> import pandas as pd
>>> frame = pd.DataFrame({"city": ["Dubai"] * 12 + ["Hatta"], "income": [51234.0] * 13})
>>> masked = SensitiveColumns(frozenset({"city", "income"}), min_count=10).mask(frame)
>>> sorted(masked["city"].unique()), masked["income"].iloc[0]
(['(suppressed)', 'Dubai'], 51000.0)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from watchkeeper.profile import LOW_CARDINALITY

if TYPE_CHECKING:
    import pandas as pd

    from watchkeeper.profile import ReferenceProfile

SENSITIVE_TAG = "watchkeeper.sensitive"     # registered-model tag: comma-separated column names
MIN_COUNT = 10                              # default k: categories seen by fewer people are suppressed
SIGNIFICANT_DIGITS = 2
SUPPRESSED = "(suppressed)"


@dataclass(frozen=True)
class SensitiveColumns:
    """Which columns of a model are sensitive, and the smallest group size that may be reported."""

    columns: frozenset[str] = frozenset()
    min_count: int = MIN_COUNT

    def __bool__(self) -> bool:
        return bool(self.columns)

    def mask(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of `frame` whose sensitive columns hold only what may be reported (see the module)."""
        present = [c for c in frame.columns if c in self.columns]
        if not present:
            return frame
        frame = frame.copy()
        for name in present:
            frame[name] = self._mask_column(frame[name])
        return frame

    def _mask_column(self, column: pd.Series) -> pd.Series:
        import pandas as pd

        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if not numeric or column.nunique(dropna=True) <= LOW_CARDINALITY:
            return self._suppress_rare(column, numeric)
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.sort(values[np.isfinite(values)])
        if len(finite) < 2 * self.min_count:           # too few people to report any value of
            return pd.Series(np.nan, index=column.index, dtype=np.float64, name=column.name)
        low, high = finite[self.min_count - 1], finite[-self.min_count]
        return pd.Series(_round_significant(np.clip(values, low, high)), index=column.index, name=column.name)

    def _suppress_rare(self, column: pd.Series, numeric: bool) -> pd.Series:
        counts = column.value_counts(dropna=True)
        rare = column.isin(counts.index[counts < self.min_count])
        if numeric:
            return column.astype(np.float64).mask(rare)
        return column.astype(object).where(~rare, SUPPRESSED)


def forget_exact_values(profile: ReferenceProfile, sensitive: SensitiveColumns) -> ReferenceProfile:
    """The profile without the sorted values that small references keep of a sensitive column."""
    features = {name: replace(f, exact_values=None) if name in sensitive.columns else f
                for name, f in profile.features.items()}
    return replace(profile, features=features)


def tagged_columns(tag: str | None) -> frozenset[str]:
    """The column names of a ``watchkeeper.sensitive`` tag value."""
    return frozenset(name.strip() for name in (tag or "").split(",") if name.strip())


def _round_significant(values: np.ndarray) -> np.ndarray:
    """Each value rounded to SIGNIFICANT_DIGITS significant digits (0 and NaN stay as they are)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.where(np.isfinite(values) & (values != 0), np.floor(np.log10(np.abs(values))), 0)
    scale = 10.0 ** (SIGNIFICANT_DIGITS - 1 - magnitude)
    return np.round(values * scale) / scale
