"""The schema of a saved reference profile, checked on every load.

A profile decides what counts as drift, so a hand-edited or corrupted one (swapped kinds,
negative counts, reversed quantiles, duplicate features) must never be used as if it were
right: it would hide real drift silently. Loading happens in two steps:

1. the shape, by msgspec: known keys only, the right JSON types (a bool is not a count),
   counts >= 0, kinds from the known set, a version this code can read;
2. the invariants between fields, per feature: numeric fields only on numeric features and
   categories only on categorical ones, finite values, quantiles non-decreasing inside
   [min, max], bin edges increasing with one more count than edges, counts that add up to
   the feature's count, and count + missing = n_rows.

Any failure is one ProfileError line naming the feature and the rule, e.g.
``feature 'income': quantiles decrease at knot 17 (3.2 after 4.1)``.

Versions: 1 (no ``schema_version`` key, no ``exact_values``) and 2 (the current one) load
as they are: version 2 only added the optional ``exact_values``.
"""

from __future__ import annotations

import math
import re
from itertools import chain
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from watchkeeper.profile import (
    CATEGORICAL,
    EXACT_VALUES_MAX,
    MAX_CATEGORIES,
    NUMERIC,
    PSI_BINS,
    QUANTILE_POINTS,
    SCHEMA_VERSION,
    FeatureProfile,
    ProfileError,
    ReferenceProfile,
)

Count = Annotated[int, msgspec.Meta(ge=0)]
NUMERIC_FIELDS = ("mean", "m2", "min", "max", "quantiles", "bin_edges", "bin_counts")
# Relative slack for "inside [min, max]": merged sketches interpolate, which can round one ulp out.
RANGE_SLACK = 1e-9


class FeatureRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One feature as saved (FeatureProfile's fields, typed)."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    kind: Literal["numeric", "categorical"]
    count: Count
    missing: Count
    mean: float | None = None
    m2: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: list[float] | None = None
    bin_edges: list[float] | None = None
    bin_counts: list[Count] | None = None
    categories: dict[str, Count] | None = None
    exact_values: list[float] | None = None


class ProfileRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole profile as saved; schema_version 1 when absent (profiles written before it existed)."""

    schema_version: Annotated[int, msgspec.Meta(ge=1)] = 1
    n_rows: Count
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    features: list[FeatureRecord]


def decode_profile(data: Any) -> ReferenceProfile:
    """A ReferenceProfile from its saved dict, or a one-line ProfileError."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ProfileError(f"profile schema version {version} is newer than this Watchkeeper ({SCHEMA_VERSION})")
    try:
        record = msgspec.convert(data, ProfileRecord, strict=True)
    except msgspec.ValidationError as error:
        raise ProfileError(_located(str(error), data)) from None
    features = [FeatureProfile(**msgspec.structs.asdict(f)) for f in record.features]
    profile = ReferenceProfile({f.name: f for f in features}, record.n_rows, record.metadata)
    _check_names([f.name for f in features])
    check_profile(profile)
    return profile


def check_profile(profile: ReferenceProfile) -> None:
    """Every invariant a profile from fit_profile or merge_profiles keeps; ProfileError on the first broken one."""
    if not profile.features:
        raise ProfileError("the profile has no features")
    arrays_checked = _arrays_look_right([f for f in profile.features.values() if f.kind == NUMERIC and f.count])
    for name, feature in profile.features.items():
        try:
            _check_feature(feature, profile.n_rows, arrays_checked)
        except ProfileError as error:
            raise ProfileError(f"feature {name!r}: {error}") from None


def _arrays_look_right(numeric: list[FeatureProfile]) -> bool:
    """One vectorised pass over the quantiles, bin edges and kept values of every numeric feature:
    True when all are finite, ordered and inside their feature's [min, max], so that the per-feature
    checks (which name the first broken value) can skip them. A profile loads once per window and
    model, and has thousands of knots: checking them one feature at a time would dominate its cost."""
    if not numeric:
        return True
    if any(f.quantiles is None or len(f.quantiles) != QUANTILE_POINTS or f.bin_edges is None
           or not all(isinstance(getattr(f, k), float) for k in ("min", "max")) for f in numeric):
        return False
    low, high = np.array([f.min for f in numeric]), np.array([f.max for f in numeric])
    slack = RANGE_SLACK * np.maximum(np.maximum(np.abs(low), np.abs(high)), 1e-300)
    groups = [([f.quantiles for f in numeric], False), ([f.bin_edges for f in numeric], True),
              ([f.exact_values or [] for f in numeric], False)]
    return all(_segments_look_right(lists, low - slack, high + slack, strict) for lists, strict in groups)


def _segments_look_right(lists: list[list[float]], low: np.ndarray, high: np.ndarray, strict: bool) -> bool:
    """Each list finite, ordered (strictly or not) and inside its own [low, high]."""
    lengths = np.array([len(values) for values in lists])
    total = int(lengths.sum())
    values = np.array(list(chain.from_iterable(lists)), dtype=float)
    steps = np.diff(values)
    starts = np.cumsum(lengths) - lengths
    within = np.ones(len(steps), dtype=bool)
    within[starts[(starts > 0) & (starts < total)] - 1] = False   # steps from one list into the next
    ordered = (steps > 0) if strict else (steps >= 0)
    bounds = np.repeat(low, lengths), np.repeat(high, lengths)
    return bool(np.isfinite(values).all() and ordered[within].all()
                and ((values >= bounds[0]) & (values <= bounds[1])).all())


def _check_names(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise ProfileError(f"a feature has a blank name ({name!r})")
        if name in seen:
            raise ProfileError(f"feature {name!r} appears twice")
        seen.add(name)


def _check_feature(f: FeatureProfile, n_rows: int, arrays_checked: bool) -> None:
    if f.count + f.missing != n_rows:
        raise ProfileError(f"count + missing = {f.count + f.missing}, but the profile has n_rows = {n_rows}")
    if f.kind == NUMERIC:
        _check_numeric(f, arrays_checked)
    else:
        _check_categorical(f)


def _check_categorical(f: FeatureProfile) -> None:
    present = [key for key in (*NUMERIC_FIELDS, "exact_values") if getattr(f, key) is not None]
    if present:
        raise ProfileError(f"a categorical feature has numeric fields ({', '.join(present)})")
    if f.categories is None:
        raise ProfileError("a categorical feature needs categories (an empty mapping when it has no values)")
    if len(f.categories) > MAX_CATEGORIES + 1:
        raise ProfileError(f"{len(f.categories)} categories, more than the {MAX_CATEGORIES} kept plus the tail")
    if sum(f.categories.values()) != f.count:
        raise ProfileError(f"category counts add up to {sum(f.categories.values())}, not to count = {f.count}")


def _check_numeric(f: FeatureProfile, arrays_checked: bool) -> None:
    if f.categories is not None:
        raise ProfileError("a numeric feature has categories")
    if f.count == 0:
        present = [key for key in (*NUMERIC_FIELDS, "exact_values") if getattr(f, key) is not None]
        if present:
            raise ProfileError(f"count is 0 but it has {', '.join(present)}")
        return
    absent = [key for key in NUMERIC_FIELDS if getattr(f, key) is None]
    if absent:
        raise ProfileError(f"count is {f.count} but {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing")
    for key in ("mean", "m2", "min", "max"):
        if not math.isfinite(getattr(f, key)):
            raise ProfileError(f"{key} is {getattr(f, key)}, not a finite number")
    if f.m2 < 0:
        raise ProfileError(f"m2 (the sum of squared deviations) is negative ({f.m2})")
    if f.min > f.max:
        raise ProfileError(f"min {f.min} is above max {f.max}")
    inside = _inside(f.min, f.max)
    if not inside(f.mean):
        raise ProfileError(f"mean {f.mean} lies outside [min, max] = [{f.min}, {f.max}]")
    _check_quantiles(f, inside, arrays_checked)
    _check_bins(f, inside, arrays_checked)
    if f.exact_values is not None:
        _check_exact_values(f, inside, arrays_checked)


# Each check below tests the shape itself and leaves the values (finite, ordered, inside [min, max])
# to the vectorised pass when that pass found them right (`arrays_checked`).

def _check_quantiles(f: FeatureProfile, inside, arrays_checked: bool) -> None:
    if len(f.quantiles) != QUANTILE_POINTS:
        raise ProfileError(f"{len(f.quantiles)} quantiles, expected {QUANTILE_POINTS}")
    if not arrays_checked:
        _inside_ordered("quantiles", f.quantiles, inside, strict=False, what="quantile", f=f)


def _check_bins(f: FeatureProfile, inside, arrays_checked: bool) -> None:
    edges, counts = f.bin_edges, f.bin_counts
    if not 1 <= len(edges) <= PSI_BINS - 1:
        raise ProfileError(f"{len(edges)} bin edges, expected 1 to {PSI_BINS - 1}")
    if not arrays_checked:
        _inside_ordered("bin_edges", edges, inside, strict=True, what="bin edge", f=f)
    if len(counts) != len(edges) + 1:
        raise ProfileError(f"{len(counts)} bin_counts for {len(edges)} bin_edges (expected one more count than edges)")
    if sum(counts) != f.count:
        raise ProfileError(f"bin_counts add up to {sum(counts)}, not to count = {f.count}")


def _check_exact_values(f: FeatureProfile, inside, arrays_checked: bool) -> None:
    if len(f.exact_values) != f.count or f.count > EXACT_VALUES_MAX:
        raise ProfileError(f"{len(f.exact_values)} exact_values for count = {f.count} "
                           f"(kept only up to {EXACT_VALUES_MAX})")
    if not arrays_checked:
        _inside_ordered("exact_values", f.exact_values, inside, strict=False, what="exact value", f=f)


def _inside_ordered(key: str, values: list[float], inside, strict: bool, what: str, f: FeatureProfile) -> None:
    array = _finite_ordered(key, values, strict)
    outside = array[~inside(array)]
    if len(outside):
        raise ProfileError(f"{what} {outside[0]} lies outside [min, max] = [{f.min}, {f.max}]")


def _finite_ordered(key: str, values: list[float], strict: bool) -> np.ndarray:
    """`values` as an array, checked finite and ordered (vectorised: a profile has thousands of knots)."""
    array = np.asarray(values, dtype=float)
    infinite = np.flatnonzero(~np.isfinite(array))
    if len(infinite):
        raise ProfileError(f"{key}[{infinite[0]}] is {array[infinite[0]]}, not a finite number")
    steps = np.diff(array)
    wrong = np.flatnonzero(steps <= 0 if strict else steps < 0)
    if len(wrong):
        i = wrong[0] + 1
        rule = "increase strictly" if strict else "never decrease"
        raise ProfileError(f"{key} must {rule}: {key}[{i}] = {array[i]} after {array[i - 1]}")
    return array


def _inside(low: float, high: float):
    """A vectorised test for 'x lies in [low, high]', with a relative slack for interpolation rounding."""
    slack = RANGE_SLACK * max(abs(low), abs(high), 1e-300)
    return lambda x: (np.asarray(x) >= low - slack) & (np.asarray(x) <= high + slack)


def _located(message: str, data: Mapping) -> str:
    """msgspec's '... - at `$.features[3].count`' as 'feature 'x': ... (at count)'."""
    text, _, where = message.partition(" - at `")
    where = where.rstrip("`").removeprefix("$").lstrip(".")
    match = re.fullmatch(r"features\[(\d+)\]\.?(.*)", where)
    if match is None:
        return f"{text} (at {where})" if where else text
    entry = data["features"][int(match[1])]
    name = entry.get("name") if isinstance(entry, Mapping) else None
    who = f"feature {name!r}" if isinstance(name, str) and name else f"features[{match[1]}]"
    return f"{who}: {text}" + (f" (at {match[2]})" if match[2] else "")
