"""Data quality of a production window: a Great Expectations suite derived from the reference profile.

Drift statistics assume a window holds the same kind of data as the reference: the same
columns, numbers where numbers were, values in a plausible range, few nulls. When that
breaks, a drift report would describe the breakage rather than the world, so a *severe*
problem blocks the window's drift report and a *warning* is only recorded. Every
expectation and its severity is listed in docs/data_quality.md.

The suite is derived from the profile, not written by hand, so a model has one the moment
its profile exists. It runs in two stages: the schema (columns present, numeric types),
then the values (ranges, null rates, categories, row count) of the columns that passed.
A missing or mistyped column cannot be range-checked; it is reported once, for what is
wrong with it, and its value expectations are not evaluated.

Great Expectations takes about 4 s to import, so it is imported when a suite is fitted or
run, not with this module: the code location and `watchkeeper drift` load without it.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from watchkeeper.profile import CATEGORICAL, NUMERIC, OTHER, FeatureProfile, ReferenceProfile

PASSED, WARNING, FAILED = "passed", "warning", "failed"  # window status
SEVERE = "severe"  # problem severities: SEVERE or WARNING
COLUMNS, TYPE, RANGE, NULLS, CATEGORIES, ROW_COUNT = "columns", "type", "range", "nulls", "categories", "row_count"
EXAMPLES = 5  # offending values quoted per problem
NUMERIC_TYPES = ["int", "float", "float16", "float32", "float64", "Float32Dtype", "Float64Dtype",
                 *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)),
                 *(f"{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64))]
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 20}  # SUMMARY doubles the cost
_GX_SEVERITY = {SEVERE: "critical", WARNING: "warning"}


@dataclass(frozen=True)
class QualityTolerance:
    """How far a window may stray from its reference before a problem is a warning, then severe.

    Shares are of the rows the expectation looks at (non-missing rows for ranges, types and
    categories; all rows for nulls). Defaults are explained in docs/data_quality.md.
    """

    range_margin: float = 0.1  # widen [min, max] by this fraction of the reference range on each side
    range_warning: float = 0.01  # share of values outside the widened range that warns...
    range_severe: float = 0.10  # ...and that blocks drift
    null_warning: float = 0.05  # null rate above the reference's by this much warns...
    null_severe: float = 0.20  # ...and blocks drift
    category_warning: float = 0.01  # share of values outside the reference categories that warns...
    category_severe: float = 0.10  # ...and blocks drift
    min_rows: int = 100  # fewer rows warn: the drift tests lose their power
    max_rows: int | None = None  # more rows warn (e.g. duplicated traffic); None: no upper bound

    def __post_init__(self) -> None:
        for kind in ("range", "null", "category"):
            warning, severe = getattr(self, f"{kind}_warning"), getattr(self, f"{kind}_severe")
            if not 0.0 <= warning <= severe <= 1.0:
                raise ValueError(f"{kind} tolerances need 0 <= warning <= severe <= 1, got {warning} and {severe}")
        if self.range_margin < 0 or self.min_rows < 0 or (self.max_rows is not None and self.max_rows < self.min_rows):
            raise ValueError("range_margin and min_rows must be >= 0, and max_rows (if set) >= min_rows")


@dataclass(frozen=True)
class QualityProblem:
    """One failed expectation, in words that name the column and the offending values."""

    check: str  # COLUMNS | TYPE | RANGE | NULLS | CATEGORIES | ROW_COUNT
    column: str | None  # None for table-level checks
    severity: str  # SEVERE | WARNING
    detail: str
    share: float | None = None  # share of the rows looked at that failed
    examples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class QualityResult:
    """What a window's validation found; the rows themselves are never touched."""

    n_rows: int
    problems: list[QualityProblem]

    @property
    def status(self) -> str:
        severities = {p.severity for p in self.problems}
        return FAILED if SEVERE in severities else WARNING if severities else PASSED

    def describe(self) -> str:
        """Every problem in one line, severe ones first."""
        ranked = sorted(self.problems, key=lambda p: p.severity != SEVERE)
        return "; ".join(f"{p.severity}: {p.detail}" for p in ranked)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "n_rows": self.n_rows, "problems": [asdict(p) for p in self.problems]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityResult:
        return cls(int(d["n_rows"]), [QualityProblem(**p) for p in d["problems"]])


class QualitySuite:
    """Expectations derived from a reference profile; `fit` builds them, `validate` runs them on a window.

    >>> import pandas as pd
    >>> from watchkeeper.profile import fit_profile
    >>> reference = pd.DataFrame({"x": [float(i) for i in range(200)]})
    >>> suite = QualitySuite(QualityTolerance(min_rows=1)).fit(fit_profile(reference))
    >>> suite.validate(pd.DataFrame({"x": [1.0, 2.0]})).status
    'passed'
    >>> suite.validate(pd.DataFrame({"y": [1.0]})).describe()
    'severe: x: column missing'
    """

    def __init__(self, tolerance: QualityTolerance = QualityTolerance(), hidden: Collection[str] = ()) -> None:
        """hidden: sensitive columns, whose problems are told without example values."""
        self.tolerance, self.hidden = tolerance, frozenset(hidden)

    def fit(self, profile: ReferenceProfile) -> QualitySuite:
        gxe = _expectations_module()
        features = list(profile.features.values())
        self.columns_ = gxe.ExpectTableColumnsToMatchSet(column_set=profile.feature_names(), exact_match=False,
                                                         severity=_GX_SEVERITY[SEVERE], meta={"check": COLUMNS})
        self.types_ = [gxe.ExpectColumnValuesToBeInTypeList(column=f.name, type_list=NUMERIC_TYPES,
                                                            severity=_GX_SEVERITY[SEVERE], meta={"check": TYPE})
                       for f in features if f.kind == NUMERIC]
        self.values_ = _row_count(gxe, self.tolerance)
        for feature in features:
            self.values_ += _nulls(gxe, feature, self.tolerance)
            self.values_ += _range(gxe, feature, self.tolerance) if feature.kind == NUMERIC else []
            self.values_ += _categories(gxe, feature, self.tolerance) if feature.kind == CATEGORICAL else []
        return self

    def validate(self, frame: pd.DataFrame) -> QualityResult:
        """Schema first (the types of the columns present), then the values of the columns that passed."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        present = set(frame.columns)
        schema = _problems(_run([self.columns_] + [e for e in self.types_ if e.column in present], frame))
        usable = present - {p.column for p in schema}
        values = [e for e in self.values_ if getattr(e, "column", None) in usable | {None}]
        found = _worst(schema + _problems(_run(values, frame)))
        return QualityResult(len(frame), [_without_examples(p) if p.column in self.hidden else p for p in found])


# ---------------------------------------------------------------- expectations from a profile


def _graded(make: functools.partial, warning_share: float, severe_share: float, meta: dict) -> list:
    """One expectation that warns above `warning_share` failing rows and is severe above `severe_share`.

    GX reports the exact share of failing rows, so one expectation (mostly at the warning
    limit) gives the same verdict as a second one at the severe limit, at half the cost:
    GX spends ~6 ms per expectation building its metric graph, whatever the number of rows.
    An expectation that could never fail (its limit reaches 100%) is left out.
    """
    if warning_share >= 1.0:
        return []
    return [make(mostly=1.0 - warning_share, severity=_GX_SEVERITY[WARNING],
                 meta={**meta, "warning_above": warning_share, "severe_above": severe_share})]


def _row_count(gxe, t: QualityTolerance) -> list:
    meta = {"check": ROW_COUNT}
    return [gxe.ExpectTableRowCountToBeBetween(min_value=1, severity=_GX_SEVERITY[SEVERE], meta=meta),
            gxe.ExpectTableRowCountToBeBetween(min_value=t.min_rows, max_value=t.max_rows,
                                               severity=_GX_SEVERITY[WARNING], meta=meta)]


def _nulls(gxe, f: FeatureProfile, t: QualityTolerance) -> list:
    make = functools.partial(gxe.ExpectColumnValuesToNotBeNull, column=f.name)
    return _graded(make, f.missing_rate + t.null_warning, f.missing_rate + t.null_severe,
                   {"check": NULLS, "reference": f.missing_rate})


def _range(gxe, f: FeatureProfile, t: QualityTolerance) -> list:
    """Values within the reference range widened by `range_margin` of it on each side.

    A fresh value from the reference distribution falls outside the range of n reference
    values with probability 2 / (n + 1) (order statistics), which is 1.6% for a 124-row
    reference: that share is added to both limits, so small references do not warn on chance.
    """
    if f.min is None:  # an all-missing reference column has no range
        return []
    span = (f.max - f.min) or abs(f.min) or 1.0  # a constant feature: a margin relative to its value
    low, high = f.min - t.range_margin * span, f.max + t.range_margin * span
    chance = 2.0 / (f.count + 1)
    make = functools.partial(gxe.ExpectColumnValuesToBeBetween, column=f.name, min_value=low, max_value=high)
    return _graded(make, t.range_warning + chance, t.range_severe + chance,
                   {"check": RANGE, "reference": [f.min, f.max]})


def _categories(gxe, f: FeatureProfile, t: QualityTolerance) -> list:
    """Values must be reference categories, unless the profile folded a tail it no longer knows into OTHER."""
    if not f.categories or OTHER in f.categories:
        return []
    allowed = sorted({v for label in f.categories for v in _label_values(label)}, key=repr)
    make = functools.partial(gxe.ExpectColumnValuesToBeInSet, column=f.name, value_set=allowed)
    return _graded(make, t.category_warning, t.category_severe, {"check": CATEGORIES})


def _label_values(label: str) -> list[Any]:
    """The raw values a profile label stands for: itself, and the number or flag it spells.

    Profiles keep categories as canonical strings (1, 1.0 and "1" are one label), while a
    window holds raw values, so a code like sex=0.0507 must match both ways.
    """
    values: list[Any] = [label]
    if label in ("True", "False"):
        return values + [label == "True"]
    for parse in (int, float):
        try:
            return values + [parse(label)]
        except ValueError:
            continue
    return values


# ---------------------------------------------------------------- running and reading results


@functools.cache
def _batch_definition():
    """One ephemeral context per process: it keeps no window state, and building one costs ~30 ms."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in run logs
    source = context.data_sources.add_pandas("watchkeeper")
    return source.add_dataframe_asset("window").add_batch_definition_whole_dataframe("window")


def _expectations_module():
    import great_expectations.expectations as gxe

    return gxe


def _run(expectations: list, frame: pd.DataFrame) -> list:
    if not expectations:
        return []
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="window", expectations=expectations)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite, result_format=_RESULT_FORMAT).results


def _problems(results: Iterable) -> list[QualityProblem]:
    problems = []
    for result in (r for r in results if not r.success):
        config = result.expectation_config
        severity = _severity(config, result.result)
        check, column = config.meta["check"], config.kwargs.get("column")
        error = _error(result.exception_info)
        if error:
            problems.append(QualityProblem(check, column, severity, f"{column or 'window'}: {check} check could not "
                                                                     f"run ({error})"))
        else:
            problems += [QualityProblem(check, col, severity, detail, share, examples)
                         for col, detail, share, examples in _DESCRIBE[check](config, result.result)]
    return problems


def _severity(config, result: Mapping) -> str:
    """Critical expectations are severe; a graded one is severe when its failing share passes the severe limit."""
    if config.severity.value == _GX_SEVERITY[SEVERE]:
        return SEVERE
    severe_above = config.meta.get("severe_above")
    return SEVERE if severe_above is not None and _share(result) > severe_above else WARNING


def _error(info: Mapping) -> str | None:
    """The first error message of a result's exception info (flat or keyed by metric), if any."""
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = [i.get("exception_message") for i in infos if i.get("raised_exception", True)]
    return next((m.splitlines()[0] for m in messages if m), None)


def _worst(problems: list[QualityProblem]) -> list[QualityProblem]:
    """One problem per (check, column): a severe failure implies its warning, so the warning is dropped."""
    kept: dict[tuple[str, str | None], QualityProblem] = {}
    for p in problems:
        current = kept.get((p.check, p.column))
        if current is None or (p.severity == SEVERE and current.severity != SEVERE):
            kept[(p.check, p.column)] = p
    return list(kept.values())


def _without_examples(problem: QualityProblem) -> QualityProblem:
    """A problem of a sensitive column, told without its example values."""
    detail = problem.detail.replace(_quoted(problem.examples), "") if problem.examples else problem.detail
    return replace(problem, detail=detail, examples=[])


def _examples(result: Mapping) -> list[Any]:
    distinct = dict.fromkeys(_json_safe(v) for v in result.get("partial_unexpected_list", []))
    return list(distinct)[:EXAMPLES]


def _share(result: Mapping) -> float:
    return (result.get("unexpected_percent") or 0.0) / 100.0


def _quoted(examples: list[Any]) -> str:
    shown = [f"{v:.6g}" if isinstance(v, float) else repr(v) for v in examples]
    return f", e.g. {', '.join(shown)}" if examples else ""


def _limits(config) -> str:
    warning, severe = config.meta["warning_above"], config.meta["severe_above"]
    return f"warning above {_percent(warning)}, severe above {_percent(severe)}"


def _percent(share: float) -> str:
    return f"{100 * share:.3g}%"


def _describe_columns(config, result):
    missing = result.get("details", {}).get("mismatched", {}).get("missing", [])
    return [(column, f"{column}: column missing", None, []) for column in missing]


def _describe_type(config, result):
    column, examples = config.kwargs["column"], _examples(result)
    if result.get("observed_value") is not None:  # a typed column: the dtype itself is wrong
        return [(column, f"{column}: column type {result['observed_value']} is not numeric", 1.0, [])]
    return [(column, f"{column}: {_share(result):.1%} of values are not numbers{_quoted(examples)}",
             _share(result), examples)]


def _describe_range(config, result):
    column, (low, high), examples = config.kwargs["column"], config.meta["reference"], _examples(result)
    bounds = f"[{config.kwargs['min_value']:.4g}, {config.kwargs['max_value']:.4g}]"
    return [(column, f"{column}: {_share(result):.1%} of values outside {bounds}, the reference range [{low:.4g}, "
                     f"{high:.4g}] widened ({_limits(config)}){_quoted(examples)}", _share(result), examples)]


def _describe_nulls(config, result):
    column, reference = config.kwargs["column"], config.meta["reference"]
    return [(column, f"{column}: {_share(result):.1%} missing, reference {reference:.1%} ({_limits(config)})",
             _share(result), [])]


def _describe_categories(config, result):
    column, examples = config.kwargs["column"], _examples(result)
    return [(column, f"{column}: {_share(result):.1%} of values are not reference categories "
                     f"({_limits(config)}){_quoted(examples)}", _share(result), examples)]


def _describe_row_count(config, result):
    low, high = config.kwargs.get("min_value"), config.kwargs.get("max_value")
    expected = f"between {low} and {high}" if high is not None else f"at least {low}"
    return [(None, f"window has {result['observed_value']} rows, expected {expected}", None, [])]


_DESCRIBE = {COLUMNS: _describe_columns, TYPE: _describe_type, RANGE: _describe_range, NULLS: _describe_nulls,
             CATEGORIES: _describe_categories, ROW_COUNT: _describe_row_count}


def _json_safe(value: Any) -> Any:
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    return str(value)
