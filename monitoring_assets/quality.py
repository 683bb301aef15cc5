"""Data quality of every model's window: the `data_quality` check of production_window.

Each model's window is validated against a Great Expectations suite derived from its
reference profile (watchkeeper.quality), in the window stage of the engine's monitor. Severe
problems keep that model's window out of drift_report (its verdict is `failed`, saying why);
warnings are recorded; the rows stay in the window file either way.

Why the evaluation step emits this check's result itself instead of a separate @asset_check:
a window partition covers every model, and Dagster gates whole partitions. A blocking check's
failure would stop drift for *every* model of the day; validating each model's window as it
is kept and reporting the check from the same step lets drift skip exactly the models whose
window failed.
"""

import warnings

import dagster as dg

from monitoring_assets.partitions import daily_windows
from watchkeeper.monitor import ModelWindow
from watchkeeper.quality import FAILED, SEVERE, WARNING, QualityResult
from watchkeeper.tables import markdown_table

# Without partitions_def the check's results carry no partition (the UI could not show them per
# day); with it Dagster 1.13 warns once that the option is a preview, which is noise in every log.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    DATA_QUALITY = dg.AssetCheckSpec(
        "data_quality", asset="production_window", partitions_def=daily_windows,
        description="Every model's window against a Great Expectations suite derived from its reference profile: "
                    "columns present, numeric types, ranges with tolerance, null rates, reference categories, "
                    "row count (docs/data_quality.md). Fails (ERROR) when a model's window has a severe problem, "
                    "which keeps that window out of drift_report; warns when there are only warnings.")
PROBLEM_COLUMNS = ["model", "severity", "check", "column", "detail"]
DESCRIBED_MODELS = 10  # the check's one-line description names this many models; `problems` lists all


def data_quality_result(results: dict[str, QualityResult]) -> dg.AssetCheckResult:
    """One check result for the day, naming each failing model, column and problem."""
    failed = sorted(m for m, r in results.items() if r.status == FAILED)
    warned = sorted(m for m, r in results.items() if r.status == WARNING)
    rows = [{"model": model, "check": p.check, "column": p.column, "severity": p.severity, "detail": p.detail}
            for model, result in sorted(results.items()) for p in result.problems]
    rows.sort(key=lambda r: r["severity"] != SEVERE)
    flagged = failed + warned
    named = [f"{m}: {results[m].describe()}" for m in flagged[:DESCRIBED_MODELS]]
    if len(flagged) > DESCRIBED_MODELS:
        named.append(f"and {len(flagged) - DESCRIBED_MODELS} more models (see problems)")
    description = "; ".join(named) or "every window passed"
    return dg.AssetCheckResult(
        check_name=DATA_QUALITY.name, asset_key=DATA_QUALITY.asset_key, passed=not rows, description=description,
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        metadata={"failed_models": dg.MetadataValue.json(failed),
                  "warning_models": dg.MetadataValue.json(warned),
                  "problems": dg.MetadataValue.md(markdown_table(rows, PROBLEM_COLUMNS))})


def quality_result(outcomes: list[ModelWindow]) -> dg.AssetCheckResult:
    """The check of one evaluation: every model whose window the run validated."""
    return data_quality_result({o.model: o.quality for o in outcomes if o.quality is not None})
