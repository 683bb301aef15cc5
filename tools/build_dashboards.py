"""Build Watchkeeper's Grafana dashboards as JSON in deploy/grafana/dashboards/.

The dashboards are code (grafana-foundation-sdk 1769699379!11.6.0, which targets Grafana
11.6) so a panel is reviewed like any change and the JSON never drifts from its source:
tests/test_grafana.py fails when the committed JSON differs from what this script builds,
validates it against Grafana's schema (deploy/grafana/schema/) and tests/test_prometheus.py
runs every query against a real Prometheus.

    .venv/bin/python tools/build_dashboards.py           # write the JSON
    .venv/bin/python tools/build_dashboards.py --check   # exit 1 when the JSON is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, statetimeline, statushistory, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BarGaugeNamePlacement,
    BarGaugeSizing,
    BarGaugeValueMode,
    BigValueColorMode,
    BigValueGraphMode,
    BigValueJustifyMode,
    BigValueTextMode,
    LegendDisplayMode,
    LegendPlacement,
    PercentChangeColorMode,
    SortOrder,
    TooltipDisplayMode,
    VisibilityMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)

OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
MODEL_DASHBOARD = "watchkeeper-model"
MODEL = 'model="$model"'
CONCEPT_KINDS = 'kind=~"concept_drift|performance"'   # river detectors, and the labelled evidence of concept drift
HEALTH_MAPPING = ValueMap({"-1": ValueMappingResult(text="no data", color="blue", index=0),
                           "0": ValueMappingResult(text="ok", color="green", index=1),
                           "1": ValueMappingResult(text="drifted", color="orange", index=2),
                           "2": ValueMappingResult(text="degraded", color="red", index=3)})
DRIFT_MAPPING = ValueMap({"0": ValueMappingResult(text="no drift", color="green", index=0),
                          "1": ValueMappingResult(text="drifted", color="orange", index=1)})
TWO_DAYS = 2 * 86400   # the WatchkeeperWindowStale threshold


def query(expr: str, legend: str = "__auto", ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    return built.instant() if instant else built.range()


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


# Every panel spells out the options its type requires in Grafana's schema, so it looks
# the same whatever defaults a Grafana version fills in.
def legend() -> common.VizLegendOptions:
    return common.VizLegendOptions().calcs([]).display_mode(LegendDisplayMode.LIST) \
        .placement(LegendPlacement.BOTTOM).show_legend(True)


def tooltip() -> common.VizTooltipOptions:
    return common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)


def last_value() -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def stat_panel(title: str, expr: str, unit: str = "short", steps=((None, "green"),)) -> stat.Panel:
    return (stat.Panel().title(title).datasource(DATASOURCE).with_target(query(expr, instant=True))
            .unit(unit).thresholds(thresholds(*steps)).height(4).span(4)
            .color_mode(BigValueColorMode.VALUE).graph_mode(BigValueGraphMode.NONE)
            .justify_mode(BigValueJustifyMode.AUTO).orientation(VizOrientation.AUTO)
            .percent_change_color_mode(PercentChangeColorMode.STANDARD).reduce_options(last_value())
            .show_percent_change(False).text_mode(BigValueTextMode.AUTO).wide_layout(True))


def health_stat(title: str, expr: str) -> stat.Panel:
    return stat_panel(title, expr).mappings([HEALTH_MAPPING]).thresholds(
        thresholds((None, "blue"), (0, "green"), (1, "orange"), (2, "red")))


def timeseries_panel(title: str, *targets: prometheus.Dataquery, unit: str = "short") -> timeseries.Panel:
    return (timeseries.Panel().title(title).datasource(DATASOURCE).targets(list(targets)).unit(unit)
            .height(8).span(12).legend(legend()).tooltip(tooltip()))


def bar_panel(title: str, expr: str, legend_format: str, unit: str = "short") -> bargauge.Panel:
    return (bargauge.Panel().title(title).datasource(DATASOURCE).with_target(query(expr, legend_format, instant=True))
            .unit(unit).height(8).span(12)
            .display_mode(BarGaugeDisplayMode.GRADIENT).legend(legend()).max_viz_height(300).min_viz_height(16)
            .min_viz_width(8).name_placement(BarGaugeNamePlacement.AUTO).orientation(VizOrientation.HORIZONTAL)
            .reduce_options(last_value()).show_unfilled(True).sizing(BarGaugeSizing.AUTO)
            .value_mode(BarGaugeValueMode.COLOR))


def status_history(title: str, target: prometheus.Dataquery, mapping: ValueMap) -> statushistory.Panel:
    return (statushistory.Panel().title(title).datasource(DATASOURCE).with_target(target).mappings([mapping])
            .height(8).span(12).legend(legend()).tooltip(tooltip()).row_height(0.9).show_value(VisibilityMode.AUTO))


def state_timeline(title: str, target: prometheus.Dataquery, mapping: ValueMap) -> statetimeline.Panel:
    return (statetimeline.Panel().title(title).datasource(DATASOURCE).with_target(target).mappings([mapping])
            .height(8).span(12).legend(legend()).tooltip(tooltip()).row_height(0.9).show_value(VisibilityMode.AUTO))


def model_link(title: str) -> db.DashboardLink:
    url = f"/d/{MODEL_DASHBOARD}?var-model=${{__field.labels.model}}&${{__url_time_range}}"
    return db.DashboardLink(title).url(url)


def fleet_dashboard() -> db.Dashboard:
    stale = ((None, "green"), (TWO_DAYS, "red"))
    return (
        base("Watchkeeper — fleet overview", "watchkeeper-fleet",
             "Every monitored model at a glance: health, drift, alerts, freshness and the pipeline.")
        .with_row(db.Row("Now"))
        .with_panel(stat_panel("Models", "count(watchkeeper_model_health)"))
        .with_panel(stat_panel("Degraded models", "count(watchkeeper_model_health == 2) or vector(0)",
                               steps=((None, "green"), (1, "red"))))
        .with_panel(stat_panel("Drifted models", "count(watchkeeper_model_health == 1) or vector(0)",
                               steps=((None, "green"), (1, "orange"))))
        .with_panel(stat_panel("Drifting features", "sum(watchkeeper_drifted_features)",
                               steps=((None, "green"), (1, "orange"))))
        .with_panel(stat_panel("Alerts raised", "sum(watchkeeper_model_alerts) or vector(0)",
                               steps=((None, "green"), (1, "orange"))))
        .with_panel(stat_panel("Stalest window", "max(watchkeeper_window_age_seconds)", "s", stale))
        .with_row(db.Row("Health"))
        .with_panel(bar_panel("Models by health", "sum by (status) (watchkeeper_model_status)", "{{status}}"))
        .with_panel(status_history("Health by model", query("watchkeeper_model_health", "{{model}} v{{version}}"),
                                   HEALTH_MAPPING).data_links([model_link("Model detail")]))
        .with_row(db.Row("Drift"))
        .with_panel(bar_panel("Most drifted features",
                              "topk(20, watchkeeper_feature_drift_effect_size"
                              " and on (model, feature) (watchkeeper_feature_drifted == 1))",
                              "{{model}} / {{feature}}").data_links([model_link("Model detail")]))
        .with_panel(timeseries_panel("Drifted features per model",
                                     query("watchkeeper_drifted_features", "{{model}}")))
        .with_row(db.Row("Alerts"))
        .with_panel(timeseries_panel("Alerts by kind", query("sum by (kind) (watchkeeper_model_alerts)", "{{kind}}")))
        .with_panel(timeseries_panel("Alerts by delivery state",
                                     query("sum by (state) (watchkeeper_alerts)", "{{state}}")))
        .with_row(db.Row("Freshness and pipeline"))
        .with_panel(bar_panel("Data freshness (age of the newest evaluated window)",
                              "sort_desc(watchkeeper_window_age_seconds)", "{{model}}", "s")
                    .thresholds(thresholds(*stale)))
        .with_panel(timeseries_panel("Label completeness (newest window)",
                                     query("watchkeeper_label_completeness", "{{model}}"), unit="percentunit"))
        .with_panel(timeseries_panel("Pipeline run durations",
                                     query("watchkeeper_pipeline_last_run_duration_seconds", "{{pipeline}}"), unit="s"))
        .with_panel(timeseries_panel("Exporter scrape",
                                     query('scrape_duration_seconds{job="watchkeeper"}', "scrape {{instance}}"),
                                     query("watchkeeper_exporter_read_seconds", "store read {{instance}}", "B"),
                                     unit="s"))
    )


def model_dashboard() -> db.Dashboard:
    model = (db.QueryVariable("model").label("Model").datasource(DATASOURCE)
             .query("label_values(watchkeeper_model_health, model)"))
    metric = (db.QueryVariable("metric").label("Metric").datasource(DATASOURCE).multi(True).include_all(True)
              .query(f"label_values(watchkeeper_metric_value{{{MODEL}}}, metric)"))
    return (
        base("Watchkeeper — model detail", MODEL_DASHBOARD,
             "One model: its verdict, metrics with confidence intervals, drift by feature and alarms.")
        .with_variable(model).with_variable(metric)
        .with_row(db.Row("Now"))
        .with_panel(health_stat("Health", f"watchkeeper_model_health{{{MODEL}}}"))
        .with_panel(stat_panel("Label completeness", f"watchkeeper_label_completeness{{{MODEL}}}", "percentunit"))
        .with_panel(stat_panel("Window age", f"watchkeeper_window_age_seconds{{{MODEL}}}", "s",
                               ((None, "green"), (TWO_DAYS, "red"))))
        .with_panel(stat_panel("Drifted features", f"watchkeeper_drifted_features{{{MODEL}}}",
                               steps=((None, "green"), (1, "orange"))))
        .with_panel(stat_panel("Concept alarms",
                               f"sum(watchkeeper_model_alerts{{{MODEL}, {CONCEPT_KINDS}}}) or vector(0)",
                               steps=((None, "green"), (1, "red"))))
        .with_panel(stat_panel("Predictions (newest window)", f"watchkeeper_window_predictions{{{MODEL}}}"))
        .with_row(db.Row("Performance"))
        .with_panel(metric_with_interval())
        .with_panel(status_history("Health over time", query(f"watchkeeper_model_health{{{MODEL}}}", "v{{version}}"),
                                   HEALTH_MAPPING))
        .with_panel(timeseries_panel("Predictions and labels (newest window)",
                                     query(f"watchkeeper_window_predictions{{{MODEL}}}", "predictions"),
                                     query(f"watchkeeper_window_labelled{{{MODEL}}}", "labelled", "B")))
        .with_row(db.Row("Drift"))
        .with_panel(bar_panel("Drift effect size by feature (newest window)",
                              f"sort_desc(watchkeeper_feature_drift_effect_size{{{MODEL}}})", "{{feature}}"))
        .with_panel(state_timeline("Drift verdict by feature",
                                   query(f"watchkeeper_feature_drifted{{{MODEL}}}", "{{feature}}"), DRIFT_MAPPING))
        .with_panel(timeseries_panel("Effect size over time",
                                     query(f"watchkeeper_feature_drift_effect_size{{{MODEL}}}", "{{feature}}")))
        .with_row(db.Row("Alarms"))
        .with_panel(timeseries_panel("Concept alarms (concept drift and performance alerts)",
                                     query(f"watchkeeper_model_alerts{{{MODEL}, {CONCEPT_KINDS}}}", "{{kind}}")))
        .with_panel(state_timeline("Dataset drift", query(f"watchkeeper_dataset_drift{{{MODEL}}}", "v{{version}}"),
                                   DRIFT_MAPPING))
    )


def metric_with_interval() -> timeseries.Panel:
    """One panel per metric (repeated over $metric): the value and its confidence band."""
    selector = f'{MODEL}, metric="$metric"'
    dashed = DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})
    return (timeseries_panel("$metric with its confidence interval",
                             query(f"watchkeeper_metric_value{{{selector}}}", "value"),
                             query(f"watchkeeper_metric_lower{{{selector}}}", "lower", "B"),
                             query(f"watchkeeper_metric_upper{{{selector}}}", "upper", "C"))
            .repeat("metric").repeat_direction("h").max_per_row(2)
            .override_by_name("upper", [DynamicConfigValue("custom.fillBelowTo", "lower"),
                                        DynamicConfigValue("custom.fillOpacity", 20), dashed])
            .override_by_name("lower", [DynamicConfigValue("custom.fillOpacity", 0), dashed]))


def base(title: str, uid: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(["watchkeeper"])
            .time("now-14d", "now").refresh("1m").timezone("utc").tooltip(DashboardCursorSync.CROSSHAIR)
            .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
            .link(db.DashboardLink("Watchkeeper").type("dashboards").tags(["watchkeeper"]).as_dropdown(True)
                  .include_vars(False).keep_time(True)))


def to_json(dashboard: db.Dashboard) -> str:
    """Stable JSON: numbered panels, and without the SDK's interval-only keys on other variables."""
    data = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    for variable in data["templating"]["list"]:
        if variable["type"] != "interval":
            for key in ("auto", "auto_count", "auto_min"):
                variable.pop(key, None)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


DASHBOARDS = {"watchkeeper-fleet.json": fleet_dashboard, "watchkeeper-model.json": model_dashboard}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Grafana dashboards in deploy/grafana/dashboards/.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed JSON is out of date")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = args.out / name, to_json(build())
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run tools/build_dashboards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
