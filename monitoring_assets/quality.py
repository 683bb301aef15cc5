"""Data quality of every model's window: the `data_quality` check of production_window.

Each model's window is validated against a Great Expectations suite derived from its
reference profile (watchkeeper.quality). Severe problems keep that model's window out of
drift_report; warnings are recorded; the rows stay in the window file either way.

Why production_window emits this check's result itself instead of a separate @asset_check:
a window partition covers every model, and Dagster gates whole partitions. A separate
non-blocking check is not ordered before drift_report (on Dagster 1.13 the in-process
executor ran drift_report first), so drift could read a verdict not yet written; a blocking
check is ordered first, but its failure would stop drift for *every* model of the day. So
the window asset validates each model's window as it writes it, stores the per-model
verdict, and reports the check in the same step; drift_report then skips exactly the models
whose window failed.
"""

import warnings

import dagster as dg
import pandas as pd

from monitoring_assets.partitions import daily_windows
from watchkeeper.profile import ReferenceProfile
from watchkeeper.quality import FAILED, SEVERE, WARNING, QualityResult, QualitySuite
from watchkeeper.store import MonitoringStore, StoredProfile, quality
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


def validate_window(store: MonitoringStore, model: str, day: str, stored: StoredProfile,
                    frame: pd.DataFrame) -> QualityResult:
    """Validate one model's window against its profile's suite and record the verdict for drift_report."""
    result = QualitySuite().fit(ReferenceProfile.from_dict(stored.profile)).validate(frame)
    store.put_quality(model, day, stored.version, result.status, result.to_dict())
    return result


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
        check_name=DATA_QUALITY.name, passed=not rows, description=description,
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        metadata={"failed_models": dg.MetadataValue.json(failed),
                  "warning_models": dg.MetadataValue.json(warned),
                  "problems": dg.MetadataValue.md(markdown_table(rows, PROBLEM_COLUMNS))})


def blocked_models(store: MonitoringStore, day: str) -> dict[str, str]:
    """The models whose window for `day` failed data quality, with what is wrong."""
    return {row["model"]: QualityResult.from_dict(row["result"]).describe()
            for row in store.rows(quality, window=day) if row["status"] == FAILED}


def skip_drift(store: MonitoringStore, model: str, day: str, version: str, reason: str) -> dict:
    """Withdraw any drift report of a window that failed data quality; the drift summary's row for it.

    A rerun with a broken replacement file must not leave the previous file's report behind.
    """
    store.delete_drift(model, day)
    return {"model": model, "version": version, "error": f"blocked by data quality: {reason}"}
