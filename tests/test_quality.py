"""Data quality: the Great Expectations suite derived from a profile, on frames and through the pipeline.

Engine tests build frames whose problems are known exactly; the integration tests read what
the real inference sensor and runs did with the demo's broken day (conftest.broken_day).
"""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from conftest import BROKEN_DAY, BROKEN_MODEL, DROPPED, NULLS, ROOT, STRINGS
from watchkeeper.profile import fit_profile
from watchkeeper.quality import (
    CATEGORIES,
    COLUMNS,
    FAILED,
    NULLS as NULLS_CHECK,
    PASSED,
    RANGE,
    ROW_COUNT,
    SEVERE,
    TYPE,
    WARNING,
    QualityResult,
    QualitySuite,
    QualityTolerance,
)

N = 1000


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 10.0, N)
    x[rng.random(N) < 0.10] = np.nan   # a reference missing rate of about 10%
    return pd.DataFrame({"x": x, "y": rng.normal(50.0, 5.0, N), "z": rng.exponential(2.0, N),
                         "city": rng.choice(["paris", "oslo", "rome"], N),
                         "code": rng.choice([0.0507, -0.0446], N)})    # a numeric code: categorical


@pytest.fixture(scope="module")
def suite(reference) -> QualitySuite:
    return QualitySuite().fit(fit_profile(reference))


@pytest.fixture()
def window(reference) -> pd.DataFrame:
    """A clean window: reference rows resampled, plus the serving columns a real window carries."""
    frame = reference.sample(400, replace=True, random_state=1).reset_index(drop=True)
    return frame.assign(prediction_id=[f"p{i}" for i in range(len(frame))], prediction=1.0)


def by_column(result: QualityResult) -> dict[tuple[str, str | None], object]:
    return {(p.check, p.column): p for p in result.problems}


def test_a_clean_window_passes(suite, window):
    result = suite.validate(window)
    assert result.status == PASSED and result.problems == [] and result.n_rows == len(window)


def test_dropped_column_strings_and_nulls_are_each_named(suite, window):
    window = window.drop(columns="z")
    window["y"] = np.where(window["y"] > 50, "high", "low")
    window.loc[window.index[:160], "x"] = np.nan   # 40% missing, against a reference ~10%
    result = suite.validate(window)
    problems = by_column(result)
    assert result.status == FAILED
    assert set(problems) == {(COLUMNS, "z"), (TYPE, "y"), (NULLS_CHECK, "x")}
    assert all(p.severity == SEVERE for p in problems.values())
    assert problems[(COLUMNS, "z")].detail == "z: column missing"
    assert problems[(TYPE, "y")].share == 1.0 and set(problems[(TYPE, "y")].examples) == {"high", "low"}
    assert "'high'" in problems[(TYPE, "y")].detail
    expected_nulls = window["x"].isna().mean()
    assert problems[(NULLS_CHECK, "x")].share == pytest.approx(expected_nulls)
    assert f"x: {expected_nulls:.1%} missing" in problems[(NULLS_CHECK, "x")].detail
    assert window.shape[0] == 400, "validation never drops rows"


@pytest.mark.parametrize(("outside", "severity"), [(3, None), (20, WARNING), (60, SEVERE)])
def test_out_of_range_share_grades_the_severity(suite, window, reference, outside, severity):
    """Values beyond the reference range widened by 10% warn above 1% of rows, are severe above 10%."""
    high = reference["z"].max() + 0.1 * (reference["z"].max() - reference["z"].min())
    window.loc[window.index[:outside], "z"] = high + 1.0 + np.arange(outside)
    problems = by_column(suite.validate(window))
    if severity is None:
        assert (RANGE, "z") not in problems, "0.75% outside is within the 1% tolerance"
        return
    problem = problems[(RANGE, "z")]
    assert problem.severity == severity and problem.share == pytest.approx(outside / len(window))
    assert min(problem.examples) == pytest.approx(high + 1.0) and f"{high:.4g}" in problem.detail


def test_null_rate_is_judged_against_the_reference_rate(suite, window):
    """The reference column is ~10% missing: 13% is normal, 20% warns (above +5 points), 35% is severe."""
    outcomes = {}
    for rate in (0.13, 0.20, 0.35):
        frame = window.copy()
        frame["x"] = frame["x"].fillna(5.0)
        frame.loc[frame.index[: int(rate * len(frame))], "x"] = np.nan
        outcomes[rate] = getattr(by_column(suite.validate(frame)).get((NULLS_CHECK, "x")), "severity", None)
    assert outcomes == {0.13: None, 0.20: WARNING, 0.35: SEVERE}


def test_unseen_categories_are_named_and_numeric_codes_match_their_labels(suite, window):
    window.loc[window.index[:12], "city"] = "atlantis"     # 3%: a warning
    result = suite.validate(window)
    problem = by_column(result)[(CATEGORIES, "city")]
    assert problem.severity == WARNING and problem.examples == ["atlantis"] and "'atlantis'" in problem.detail
    assert (CATEGORIES, "code") not in by_column(result), "float codes match the profile's string labels"


def test_row_count_bounds(suite, window):
    assert by_column(suite.validate(window.iloc[:50]))[(ROW_COUNT, None)].severity == WARNING
    empty = suite.validate(window.iloc[:0])
    assert empty.status == FAILED and empty.describe() == "severe: window has 0 rows, expected at least 1"
    bounded = QualitySuite(QualityTolerance(min_rows=10, max_rows=100)).fit(fit_profile(window.iloc[:, :5]))
    assert by_column(bounded.validate(window))[(ROW_COUNT, None)].detail == \
        "window has 400 rows, expected between 10 and 100"


def test_bad_input_is_a_one_line_error(suite):
    with pytest.raises(TypeError, match="^expected a pandas DataFrame, got list$"):
        suite.validate([1, 2, 3])
    with pytest.raises(ValueError, match="warning <= severe"):
        QualityTolerance(range_warning=0.2, range_severe=0.1)


def test_records_round_trip_and_reruns_replace(tmp_path, suite, window):
    from watchkeeper.store import MonitoringStore

    store = MonitoringStore(f"sqlite:///{tmp_path / 'store.db'}")
    broken = suite.validate(window.drop(columns="z"))
    store.put_quality("m", "2026-11-15", "1", broken.status, broken.to_dict())
    [row] = store.quality(window="2026-11-15")
    assert QualityResult.from_dict(row.result) == broken
    passed = suite.validate(window)
    store.put_quality("m", "2026-11-15", "1", passed.status, passed.to_dict())
    assert [r.status for r in store.quality(window="2026-11-15")] == [PASSED]
    assert store.quality(window="2026-11-14") == []


def test_great_expectations_loads_only_when_a_window_is_validated():
    """GX takes ~4 s to import: neither `watchkeeper drift --help` nor the code location may pay it."""
    probe = ("import sys, contextlib, io\nfrom cli.main import main\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    main(['drift', '--help'])\n"
             "import watchkeeper.quality, definitions\n"
             "print('great_expectations' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr[-2000:]


# ---------------------------------------------------------------- through the pipeline (slow)


@pytest.fixture(scope="module")
def evaluated(broken_day):
    from watchkeeper.store import MonitoringStore

    instance = dg.DagsterInstance.from_config(str(broken_day.home / "dagster_home"))
    yield broken_day, instance, MonitoringStore(f"sqlite:///{broken_day.home / 'monitoring.db'}")
    instance.dispose()


@pytest.mark.slow
def test_broken_window_fails_the_check_naming_each_problem(evaluated):
    broken_day, instance, _ = evaluated
    assert broken_day.runs == [f"evaluate_window[{BROKEN_DAY}]"] and broken_day.failed_runs == []
    key = dg.AssetCheckKey(dg.AssetKey("production_window"), "data_quality")
    [record] = [r for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
                if r.partition == BROKEN_DAY]
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failed_models"].value == [BROKEN_MODEL]
    problems = evaluation.metadata["problems"].value
    for expected in (f"{DROPPED}: column missing", f"{STRINGS}: 100.0% of values are not numbers",
                     f"{NULLS}: {broken_day.n_nulls / broken_day.n_rows:.1%} missing, reference 0.0%"):
        assert expected in problems and expected in evaluation.description


@pytest.mark.slow
def test_no_drift_from_the_broken_window_and_its_rows_are_kept(evaluated, monkeypatch):
    """The broken model's window gets no drift row; every other model of the demo (the Feast-fed
    churn_feast too) gets its drift for the day; the broken file's rows are kept as they came."""
    from cli.demo import demo_environment
    from watchkeeper.inference_log import INFERENCE, InferenceLog

    broken_day, _, store = evaluated
    drift = {row.model for row in store.drift(window=BROKEN_DAY)}
    others = {p.name for p in (broken_day.home / INFERENCE).iterdir()} - {BROKEN_MODEL}
    assert others and drift == others, "the other models' drift was computed, the broken model's was not"
    monkeypatch.setenv("WATCHKEEPER_KMS_DIR", demo_environment(broken_day.home)["WATCHKEEPER_KMS_DIR"])  # sealed at rest
    kept = InferenceLog(broken_day.home).read_window(BROKEN_MODEL, BROKEN_DAY)
    assert len(kept) == broken_day.n_rows and int(kept[NULLS].isna().sum()) == broken_day.n_nulls
    assert DROPPED not in kept.columns and set(kept[STRINGS]) == {"high", "low"}


@pytest.mark.slow
def test_drift_report_says_why_the_model_was_skipped(evaluated):
    _, instance, _ = evaluated
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift_report"), asset_partitions=[BROKEN_DAY]), limit=1).records
    summary = record.asset_materialization.metadata["summary"].value
    line = next(line for line in summary.splitlines() if line.startswith(f"| {BROKEN_MODEL} "))
    assert "blocked by data quality: severe:" in line and f"{DROPPED}: column missing" in line


def test_check_fails_with_error_only_for_severe_problems(suite, window):
    from monitoring_assets.quality import data_quality_result

    clean, warned = suite.validate(window), suite.validate(window.iloc[:50])
    broken = suite.validate(window.drop(columns="z"))
    assert data_quality_result({"a": clean}).passed
    only_warnings = data_quality_result({"a": clean, "b": warned})
    assert not only_warnings.passed and only_warnings.severity == dg.AssetCheckSeverity.WARN
    severe = data_quality_result({"a": clean, "b": warned, "c": broken})
    assert not severe.passed and severe.severity == dg.AssetCheckSeverity.ERROR
    assert severe.metadata["failed_models"].value == ["c"] and severe.metadata["warning_models"].value == ["b"]
    assert severe.description.startswith("c: severe: z: column missing; b: warning: window has 50 rows")


def test_drift_report_skips_only_the_failed_window_and_withdraws_its_old_report(tmp_path, reference, suite, window):
    """A rerun whose new file is broken must not leave the earlier file's drift report behind."""
    from monitoring_assets import evaluate_models
    from resources import (
        AlertingResource, FeastResource, InferenceLogResource, MonitoringConfigResource, MonitoringStoreResource,
    )
    from watchkeeper.inference_log import InferenceLog
    from watchkeeper.store import MonitoringStore

    day, url = "2026-11-15", f"sqlite:///{tmp_path / 'store.db'}"
    store, log = MonitoringStore(url), InferenceLog(tmp_path)
    profile = fit_profile(reference).to_dict()
    frames = {"good": window, "broken": window.drop(columns="z")}
    for model, frame in frames.items():
        store.put_profile(model, "1", "regression", profile, {"features": list(reference.columns)})
        log.write_window(model, day, frame)
        result = suite.validate(frame)
        store.put_quality(model, day, "1", result.status, result.to_dict())
    store.put_drift("broken", day, "1", {"dataset_drift": False, "n_current": 400})  # from an earlier, good file
    dg.materialize([evaluate_models], selection=["drift_report"], partition_key=day,
                   instance=dg.DagsterInstance.ephemeral(),
                   resources={"monitoring_store": MonitoringStoreResource(url=url),
                              "drop_folder": InferenceLogResource(root=str(tmp_path)),
                              "monitoring_config": MonitoringConfigResource(path=""), "feature_store": FeastResource(),
                              "alerting": AlertingResource(policy_path=str(ROOT / "deploy" / "alerting.demo.yaml"))})
    assert {row.model for row in store.drift(window=day)} == {"good"}
