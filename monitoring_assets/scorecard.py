"""One model's history of windows: where each verdict came from, at a glance."""

import dagster as dg

from monitoring_assets.health import SPEC as HEALTH_SPEC
from monitoring_assets.partitions import model_partitions
from resources import AlertingResource, MonitoringStoreResource
from watchkeeper.alerting.policy import Policy
from watchkeeper.links import model_links, ticket_url
from watchkeeper.messages import verdict_text
from watchkeeper.performance import PRIMARY_METRIC
from watchkeeper.plots import markdown_image, metric_history
from watchkeeper.problems import ProblemLog
from watchkeeper.store import MonitoringStore
from watchkeeper.tables import markdown_table

HISTORY_COLUMNS = ["window", "version", "status", "rows", "labelled", "metric", "lower", "upper",
                   "concept_alarms", "drifted_features", "why"]
PROBLEM_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("kind", "string", description="performance, data_drift, concept_drift, promotion_approval, ..."),
    dg.TableColumn("record", "string", description="the ITIL record it is raised as: incident, problem or change"),
    dg.TableColumn("state", "string", description="open, acknowledged, resolved or reopened"),
    dg.TableColumn("opened", "string", description="its first window"),
    dg.TableColumn("tickets", "string", description="where it went: channel, and the ticket id it gave (links below)"),
])


@dg.asset(
    partitions_def=model_partitions,
    deps=[dg.AssetDep(HEALTH_SPEC.key, partition_mapping=dg.AllPartitionMapping())],
    group_name="reports",
    kinds={"sql"},
    description="Per model: every window's verdict with its evidence, and the primary metric's trend "
                "with its confidence band. Refreshed for models that model_health flags.",
)
def model_scorecard(context: dg.AssetExecutionContext, monitoring_store: MonitoringStoreResource,
                    alerting: AlertingResource) -> dg.MaterializeResult:
    model, store = context.partition_key, monitoring_store.store()
    stored = store.latest_profiles(lambda name: name == model).get(model)
    if stored is None:
        raise dg.Failure(f"model {model!r} has no reference profile yet")
    primary = PRIMARY_METRIC[stored.task]
    history = _history(store, model, primary)
    plot = metric_history([h["window"] for h in history], [h["metric"] for h in history],
                          [h["lower"] for h in history], [h["upper"] for h in history],
                          [h["status"] for h in history], stored.reference["metrics"][primary]["value"],
                          f"{model}: {primary} per window (colour = verdict)",
                          alarms=[h["concept_alarms"] > 0 for h in history], metric_name=primary)
    flagged = [h["window"] for h in history if h["status"] not in ("ok", "no_data")]
    latest = history[-1] if history else None
    links = model_links(alerting.dagster_base(), alerting.mlflow_base() or "", model, stored.version,
                        latest and latest["window"], flagged[0] if flagged else None)
    problems, tickets = _problems(ProblemLog(store), alerting.policy(), model)
    return dg.MaterializeResult(metadata={
        "model_version": stored.version,
        "latest_status": latest["status"] if latest else "no_data",
        "latest_why": dg.MetadataValue.text(latest["why"] if latest else "no window yet"),
        "flagged_windows": len(flagged),
        **{name: dg.MetadataValue.url(url) for name, url in links.items()},
        "problems": dg.MetadataValue.table([dg.TableRecord(p) for p in problems], schema=PROBLEM_SCHEMA),
        **{f"ticket {ticket}": dg.MetadataValue.url(url) for ticket, url in tickets.items()},
        "trend": dg.MetadataValue.md(markdown_image(plot, f"{model} {primary}")),
        "history": dg.MetadataValue.md(markdown_table(history, HISTORY_COLUMNS)),
    })


def _history(store: MonitoringStore, model: str, primary: str) -> list[dict]:
    """One row per window: verdict, traffic, labels, the primary metric and the drifted features."""
    rows_by_window = {w.window: w.n_rows for w in store.windows(model)}
    drift_by_window = {d.window: d.report for d in store.drift(model)}
    metric_by_window = {m.window: m for m in store.metrics(model) if m.metric == primary}
    alarms_by_day = {s.day: len(s.alarms) for s in store.streams(model) if s.stream == "errors"}
    history = []
    for verdict in store.verdicts(model):
        window = verdict.window
        metric = metric_by_window.get(window)
        history.append({
            "window": window, "version": verdict.version, "status": verdict.status,
            "rows": rows_by_window.get(window), "labelled": metric and metric.n_labelled,
            "metric": metric and _round(metric.value), "lower": metric and _round(metric.lower),
            "upper": metric and _round(metric.upper),
            "concept_alarms": alarms_by_day.get(window, 0),
            "drifted_features": ", ".join(drift_by_window.get(window, {}).get("drifted_features", [])),
            "why": verdict_text(verdict.reasons, with_history=False),
        })
    return history


def _problems(log: ProblemLog, policy: Policy, model: str) -> tuple[list[dict], dict[str, str]]:
    """The model's problems, newest first, with the tickets they have; and a link to each ticket that
    has a page (Jira, ServiceNow), so one click opens it."""
    rows, links = [], {}
    for problem in reversed(log.problems(model)):
        tickets = log.tickets(problem.fingerprint)
        rows.append({"kind": problem.kind, "record": problem.record, "state": problem.state,
                     "opened": problem.first_window,
                     "tickets": ", ".join(_ticket(channel, ticket, problem.alert.fingerprint)
                                          for channel, ticket in tickets.items()) or "-"})
        for channel, ticket in tickets.items():
            spec = policy.channels.get(channel)
            url = spec and ticket_url(spec.type, spec.config, ticket, problem.record)
            if url:
                links[ticket] = url
    return rows, links


def _ticket(channel: str, ticket: str, fingerprint: str) -> str:
    """`channel: id`, or the channel alone where it kept the alert under its fingerprint (an outbox)."""
    return channel if ticket == fingerprint else f"{channel}: {ticket}"


def _round(x: float | None) -> float | None:
    """Three significant digits: what a person compares across windows (the store keeps them all)."""
    return None if x is None else float(f"{x:.3g}")
