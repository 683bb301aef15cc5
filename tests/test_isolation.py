"""One bad input never stops the fleet: a hostile day through the real sensor and a real Dagster run.

On the day after the demo, in one drop folder: wine_classifier's window file is truncated, a new
model `fx_rates` has feature names full of `$` (matplotlib's mathtext would choke on them), a
new model `plugin_model` uses a team's drift-test plugin that raises, and the folder holds a
stray file, a file for a day before the first partition, a hidden folder and a symlink out of
the folder. The inference sensor must still schedule the day, the day's run must succeed, the
healthy models' verdicts must be complete and right, and the two broken models must be visibly
failed with their reasons.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import demo_copy, inference_cursor, next_day_environment, replayed_day

pytestmark = pytest.mark.slow
DAY = "2026-11-15"
FX_FEATURES = ["usd_$_to_$_eur", "eur_$_to_$_gbp", "$spread", "rate_\\$x^2_"]
PLUGIN = '''
class Exploding:
    name, kind = "exploding", "numeric"

    def __call__(self, histograms):
        raise RuntimeError("the team's test divided by zero")
'''


def regression_reference(model: str, features: list[str], rows: pd.DataFrame) -> tuple[dict, dict]:
    from watchkeeper.performance import MetricValue
    from watchkeeper.profile import fit_profile
    from watchkeeper.reference import ModelReference

    return ModelReference(model, "1", "regression", features, fit_profile(rows[features]),
                          {"mae": MetricValue("mae", 1.0, 0.9, 1.1)}).to_stored()


def frame(features: list[str], rng, n: int, shift: float = 0.0) -> pd.DataFrame:
    data = {f: rng.normal(shift, 1, n) for f in features}
    stamps = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, n)), unit="s")
    return pd.DataFrame({"timestamp": stamps, "prediction_id": [f"p{i}" for i in range(n)],
                         "prediction": rng.normal(0, 1, n), **data})


@pytest.fixture(scope="module")
def hostile_day(demo, tmp_path_factory):
    import dagster as dg

    from cli.demo import demo_environment
    from sensor_driver import SensorDriver
    from definitions import defs
    from monitoring_assets import ASSETS, JOBS
    from resources import MonitoringConfigResource
    from sensors import SENSORS
    from watchkeeper.inference_log import INFERENCE, InferenceLog
    from watchkeeper.store import MonitoringStore

    tmp = tmp_path_factory.mktemp("hostile")
    home = demo_copy(demo[0], tmp / "demo")
    log, rng = InferenceLog(home), np.random.default_rng(9)
    caught_up = inference_cursor(home)
    store = MonitoringStore(f"sqlite:///{home / 'monitoring.db'}")
    with pytest.MonkeyPatch.context() as keys:   # the demo's files are sealed: read them with its keys
        keys.setenv("WATCHKEEPER_KMS_DIR", demo_environment(home)["WATCHKEEPER_KMS_DIR"])
        frames = replayed_day(log, DAY) | {"fx_rates": frame(FX_FEATURES, rng, 800, shift=1.5),
                                           "plugin_model": frame(["a", "b", "c"], rng, 800)}
    for model, features in (("fx_rates", FX_FEATURES), ("plugin_model", ["a", "b", "c"])):
        store.put_profile(model, "1", "regression", *regression_reference(model, features, frame(features, rng, 2000)))
        (home / INFERENCE / model).mkdir()
    for model, rows in frames.items():
        rows.to_parquet(home / INFERENCE / model / f"{DAY}.parquet", index=False)
    truncated = home / INFERENCE / "wine_classifier" / f"{DAY}.parquet"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    frames["plugin_model"].to_parquet(home / INFERENCE / "diabetes_regressor" / "notes.parquet")
    frames["plugin_model"].to_parquet(home / INFERENCE / "breast_cancer_classifier" / "2020-01-01.parquet")
    (home / INFERENCE / ".cache" / "x").mkdir(parents=True)
    frames["plugin_model"].to_parquet(home / INFERENCE / ".cache" / "x" / f"{DAY}.parquet")
    outside = tmp / "outside"
    outside.mkdir()
    frames["plugin_model"].to_parquet(outside / f"{DAY}.parquet")
    (home / INFERENCE / "escapee").symlink_to(outside, target_is_directory=True)

    plugin = tmp / "plugin"
    plugin.mkdir()
    (plugin / "team_plugin.py").write_text(PLUGIN)
    (plugin / "team_plugin-1.0.dist-info").mkdir()
    (plugin / "team_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: team-plugin\nVersion: 1.0\n")
    (plugin / "team_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[watchkeeper.drift_tests]\nexploding = team_plugin:Exploding\n")
    config = tmp / "monitoring.yaml"
    config.write_text(textwrap.dedent("""
        models:
          plugin_model: {drift: {numeric_test: exploding}}
    """))
    with pytest.MonkeyPatch.context() as env:
        env.syspath_prepend(str(plugin))
        for name, value in next_day_environment(home).items():
            env.setenv(name, value)
        hostile = dg.Definitions(assets=ASSETS, jobs=JOBS, sensors=SENSORS,
                                 resources={**defs.resources,
                                            "monitoring_config": MonitoringConfigResource(path=str(config))})
        with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
            driver = SensorDriver(hostile, instance)
            driver.cursors["inference_sensor"] = caught_up
            asked = driver.tick("inference_sensor")
            check = _check(instance, "evaluated")
            report = _materialization(instance, "drift_report")
    verdicts = {r.model: r for r in store.verdicts(window=DAY)}
    return {"asked": [f"{r.job_name}[{r.partition_key}]" for r in asked], "failed_runs": driver.failed_runs,
            "verdicts": verdicts, "check": check, "report": report, "store": store}


def _check(instance, name: str):
    import dagster as dg

    key = dg.AssetCheckKey(dg.AssetKey("model_health"), name)
    [record] = [r for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
                if r.partition == DAY]
    return record.event.dagster_event.event_specific_data


def _materialization(instance, asset: str) -> dict:
    import dagster as dg

    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[DAY]), limit=1).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_the_sensor_schedules_the_day_past_files_it_cannot_use(hostile_day):
    assert hostile_day["asked"] == [f"evaluate_window[{DAY}]"]
    assert hostile_day["failed_runs"] == [], "the day's run succeeded although two models failed"


def test_the_healthy_models_verdicts_are_complete_and_right(hostile_day):
    """breast_cancer: no label has arrived for the day and no alarm fired, so ok; diabetes: its drift
    (eight days old) is measured but no longer unusual for its own history; fx_rates moved 1.5 sd."""
    verdicts, store = hostile_day["verdicts"], hostile_day["store"]
    assert verdicts["breast_cancer_classifier"].status == "ok"
    assert verdicts["diabetes_regressor"].status == "ok"
    assert [r["signal"] for r in verdicts["diabetes_regressor"].reasons] == ["history"]
    [diabetes_drift] = store.drift("diabetes_regressor", DAY)
    assert diabetes_drift.dataset_drift
    assert verdicts["fx_rates"].status == "drifted"


def test_the_broken_models_are_failed_with_their_reasons(hostile_day):
    verdicts = hostile_day["verdicts"]
    wine, plugin = verdicts["wine_classifier"], verdicts["plugin_model"]
    assert wine.status == "failed" and plugin.status == "failed"
    [wine_reason] = wine.reasons
    assert wine_reason["stage"] == "window" and "parquet" in wine_reason["detail"].lower()
    [plugin_reason] = plugin.reasons
    assert plugin_reason["stage"] == "drift" and "divided by zero" in plugin_reason["detail"]
    check = hostile_day["check"]
    assert not check.passed and check.metadata["failed_models"].value == ["plugin_model", "wine_classifier"]
    assert "wine_classifier: window:" in check.description and "plugin_model: drift:" in check.description


def test_the_failed_evaluations_are_problems_that_alert(hostile_day, monkeypatch):
    from cli.demo import demo_environment
    from watchkeeper.problems import ProblemLog

    home = Path(str(hostile_day["store"].engine.url).removeprefix("sqlite:///")).parent
    monkeypatch.setenv("WATCHKEEPER_KMS_DIR", demo_environment(home)["WATCHKEEPER_KMS_DIR"])   # payloads are sealed
    kinds = {(p.model, p.kind) for p in ProblemLog(hostile_day["store"]).problems()}
    assert {("wine_classifier", "evaluation"), ("plugin_model", "evaluation")} <= kinds


def test_dollar_signs_in_feature_names_are_drawn_not_interpreted(hostile_day):
    from watchkeeper.tables import markdown_text

    report = hostile_day["report"]["report"]
    section = report[report.index(f"### {markdown_text('fx_rates')}"):]
    section = section[: section.index("### ", 4)] if "### " in section[4:] else section
    assert "data:image/png;base64," in section and "picture not drawn" not in section
    assert markdown_text("usd_$_to_$_eur") in section
