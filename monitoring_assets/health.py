"""model_health: one verdict per model and window, and the alerts its problems raise.

Also the checks of model_health, which the UI shows on the asset and in the graph without
opening anything: `healthy` (pass when every model is ok, warn when some drifted, fail when
some degraded or failed; its description names each unhealthy model and why) and `evaluated`
(every model's window was evaluated, or the check fails naming each model that failed, at which
stage and why). The verdicts are a table with a schema, one row per model with its pass / warn
/ fail, so the reasons read inline.
"""

import warnings

import dagster as dg

from monitoring_assets.concept import SPEC as CONCEPT_SPEC
from monitoring_assets.drift import SPEC as DRIFT_SPEC
from monitoring_assets.partitions import daily_windows
from monitoring_assets.performance import SPEC as PERFORMANCE_SPEC
from watchkeeper.health import DEGRADED, DRIFTED, FAILED, NO_DATA, OK
from watchkeeper.messages import verdict_text
from watchkeeper.monitor import ModelWindow
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.tables import markdown_table, markdown_text

SPEC = dg.AssetSpec(
    "model_health",
    deps=[DRIFT_SPEC.key, PERFORMANCE_SPEC.key, CONCEPT_SPEC.key],
    group_name="monitoring",
    kinds={"sql"},
    description="Per day and model: ok / drifted / degraded / no_data / failed. Performance is judged against "
                "the reference with its interval, drift by the engine AND the model's own weekday history, "
                "stream alarms count as concept drift; the reasons, history decisions and root cause are "
                "recorded. A window that could not be evaluated is `failed` with the stage and reason. Problems "
                "go to the problem log and the alert outbox in the verdict's transaction, routed by the alert "
                "policy (one alert per model version and kind, escalated while they persist).",
)

with warnings.catch_warnings():   # partitions_def on a check is a preview in Dagster 1.13 (see quality.py)
    warnings.simplefilter("ignore", dg.PreviewWarning)
    EVALUATED = dg.AssetCheckSpec(
        "evaluated", asset="model_health", partitions_def=daily_windows,
        description="Every monitored model's window was evaluated. Fails (ERROR) naming each model whose "
                    "window could not be read, checked or scored, with the stage and the reason; the other "
                    "models' verdicts are complete. Re-materialise the partition once the cause is fixed.")
    HEALTHY = dg.AssetCheckSpec(
        "healthy", asset="model_health", partitions_def=daily_windows,
        description="Every model is ok in this window. Warns when a model's data drifted, fails (ERROR) when "
                    "a model degraded or could not be evaluated; names each such model and why.")
FAILURE_COLUMNS = ["model", "stage", "reason"]
# A verdict as a check outcome, per model: what the `healthy` check and the verdicts table show.
CHECK_OUTCOME = {OK: "pass", NO_DATA: "pass", DRIFTED: "warn", DEGRADED: "fail", FAILED: "fail"}
VERDICT_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("model", "string", description="monitored model"),
    dg.TableColumn("version", "string", description="champion version judged"),
    dg.TableColumn("check", "string", description="pass / warn / fail, as the `healthy` check counts it"),
    dg.TableColumn("status", "string", description="ok, drifted, degraded, no_data or failed"),
    dg.TableColumn("why", "string", description="the verdict's reasons, largest first"),
])
CHECK_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def verdict_rows(outcomes: list[ModelWindow]) -> list[dict]:
    """One row per judged model, unhealthy first: what an engineer reads first."""
    rows = [{"model": o.model, "version": str(o.version), "check": CHECK_OUTCOME[o.verdict.status],
             "status": o.verdict.status, "why": verdict_text(o.verdict.reasons, with_history=False) or "-"}
            for o in outcomes if o.verdict is not None]
    return sorted(rows, key=lambda r: (CHECK_ORDER[r["check"]], r["model"]))


def metadata(day: str, outcomes: list[ModelWindow]) -> dict:
    judged = [o for o in outcomes if o.verdict is not None]
    rows = verdict_rows(outcomes)
    queued = [{"alert": fingerprint, "channels": ", ".join(d.channel for d in plan.dispatches),
               "held": ", ".join(f"{c} ({why})" for c, why in dict(plan.held).items())}
              for o in judged for fingerprint, plan in o.plans.items()]
    raised = [a for o in judged for a in o.alerts]
    return {
        "flagged_models": dg.MetadataValue.json([o.model for o in judged if o.verdict.status != OK]),
        "unhealthy_models": sum(r["check"] != "pass" for r in rows),
        "verdicts": dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=VERDICT_SCHEMA),
        "alerts_queued": dg.MetadataValue.md(markdown_table(queued, ["alert", "channels", "held"])),
        "alerts_raised": dg.MetadataValue.int(len(raised)),
        "alerts": dg.MetadataValue.md(alerts_markdown(raised)),
    }


def healthy_result(outcomes: list[ModelWindow]) -> dg.AssetCheckResult:
    rows = verdict_rows(outcomes)
    unhealthy = [r for r in rows if r["check"] != "pass"]
    failing = any(r["check"] == "fail" for r in unhealthy)
    described = " ".join(f"{r['model']} is {r['status']}: {r['why']}" for r in unhealthy[:10])
    return dg.AssetCheckResult(
        check_name=HEALTHY.name, asset_key=SPEC.key, passed=not unhealthy,
        severity=dg.AssetCheckSeverity.ERROR if failing else dg.AssetCheckSeverity.WARN,
        description=(f"{len(unhealthy)} of {len(rows)} models unhealthy. {described}" if unhealthy
                     else f"all {len(rows)} models ok"),
        metadata={**{f"{r['model']}": dg.MetadataValue.text(r["check"]) for r in rows[:50]},
                  "unhealthy_models": len(unhealthy),
                  "verdicts": dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=VERDICT_SCHEMA)})


def alerts_markdown(alerts: list[AlertRecord]) -> str:
    """Every alert the window raised, with its full text as the channels received it (escaped:
    names come from data). It is read from the problem log, so a re-materialisation of the window
    that queued nothing new (a label refresh, cooldown) still shows what the window raised."""
    from watchkeeper.alerting.channels import content   # the channels' clients load only when alerts are shown

    if not alerts:
        return "No alert raised by this window."
    blocks = []
    for alert in alerts:
        lines = [line for line in content.plain_text(alert).split("\n")[2:] if line]
        shown = [f"- {markdown_text(line[2:])}" if line.startswith("* ") else f"{markdown_text(line)}  " for line in lines]
        blocks.append(f"#### {markdown_text(alert.title)}\n\nFingerprint {markdown_text(alert.fingerprint)} "
                      f"({alert.record})\n\n" + "\n".join(shown))
    return "\n\n".join(blocks)


def evaluated_result(outcomes: list[ModelWindow]) -> dg.AssetCheckResult:
    rows = [{"model": o.model, "stage": stage, "reason": reason} for o in outcomes for stage, reason in o.failures.items()]
    failed = sorted({r["model"] for r in rows})
    return dg.AssetCheckResult(
        check_name=EVALUATED.name, asset_key=SPEC.key, passed=not rows, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{r['model']}: {r['stage']}: {r['reason']}" for r in rows[:10]) or
                    f"all {len(outcomes)} models evaluated",
        metadata={"failed_models": dg.MetadataValue.json(failed), "evaluated_models": len(outcomes) - len(failed),
                  "failures": dg.MetadataValue.md(markdown_table(rows, FAILURE_COLUMNS))})


def flagged_models(event_metadata: dict) -> list[str]:
    """The models a model_health materialization flagged (read by the scorecard sensor)."""
    value = event_metadata.get("flagged_models")
    return list(value.value) if value is not None else []
