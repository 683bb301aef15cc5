"""What an alert says, as short labelled text, before any channel's markup.

Every channel shows the same evidence: the headline facts, the impacted features with their
test statistics, the metric deltas with their intervals, and links to look further. Only
aggregates from the AlertRecord reach a message, never rows. Long lists are cut at
MAX_ITEMS and the cut is stated ("and 7 more features"), never silent.

>>> feature_line({"name": "income", "test": "ks", "statistic": 0.2134, "p_value": 3.1e-08,
...               "effect_size": 0.34, "effect_metric": "psi"})
'ks statistic 0.2134, p=3.10e-08, psi 0.34'
>>> metric_line({"name": "auc", "value": 0.81, "lower": 0.79, "upper": 0.83, "reference": 0.87, "delta": -0.06})
'0.81 [0.79, 0.83], Δ -0.06 vs reference 0.87'
"""

from __future__ import annotations

from watchkeeper.alerting.channels.severity import itil_fields, priority_label
from watchkeeper.alerting.record import AlertRecord

MAX_ITEMS = 10


def fmt(value: float | int | None, signed: bool = False) -> str:
    """A number a person reads at a glance: 4 significant digits, scientific when tiny or huge."""
    if value is None:
        return "n/a"
    sign = "+" if signed else ""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:{sign}.4g}"
    return f"{value:{sign}.2e}"


def headline(alert: AlertRecord) -> list[tuple[str, str]]:
    itil = itil_fields(alert.severity)
    windows = "window" if alert.occurrence == 1 else "windows"
    return [
        ("Severity", f"{alert.severity} (P{itil.priority} {priority_label(itil.priority)})"),
        ("Kind", alert.kind.replace("_", " ")),
        ("Model", f"{alert.model} v{alert.version}"),
        ("Window", alert.window),
        ("Persisting", f"{alert.occurrence} {windows}"),
    ]


def feature_line(feature: dict) -> str:
    text = f"{feature.get('test') or 'test'} statistic {fmt(feature.get('statistic'))}, p={fmt(feature.get('p_value'))}"
    if feature.get("effect_size") is not None:
        text += f", {feature.get('effect_metric') or 'effect'} {fmt(feature['effect_size'])}"
    return text


def metric_line(metric: dict) -> str:
    text = fmt(metric.get("value"))
    if metric.get("lower") is not None or metric.get("upper") is not None:
        text += f" [{fmt(metric.get('lower'))}, {fmt(metric.get('upper'))}]"
    if metric.get("delta") is not None:
        text += f", Δ {fmt(metric['delta'], signed=True)} vs reference {fmt(metric.get('reference'))}"
    return text


def features(alert: AlertRecord) -> list[tuple[str, str]]:
    """(feature name, evidence) for the first MAX_ITEMS impacted features."""
    return [(str(f.get("name")), feature_line(f)) for f in alert.features[:MAX_ITEMS]]


def metrics(alert: AlertRecord) -> list[tuple[str, str]]:
    """(metric name, value with interval and delta) for the first MAX_ITEMS metrics."""
    return [(str(m.get("name")), metric_line(m)) for m in alert.metrics[:MAX_ITEMS]]


def omitted(items: list, noun: str) -> str | None:
    """'and 7 more features' when a list was cut at MAX_ITEMS, else None."""
    extra = len(items) - MAX_ITEMS
    return f"and {extra} more {noun} (see the links)" if extra > 0 else None


def evidence(alert: AlertRecord) -> list[tuple[str, list[tuple[str, str]], str | None]]:
    """The non-empty evidence sections: (title, [(name, text)], "and N more ..." or None)."""
    sections = [("Impacted features", features(alert), omitted(alert.features, "features")),
                ("Metrics", metrics(alert), omitted(alert.metrics, "metrics"))]
    return [section for section in sections if section[1]]


def links(alert: AlertRecord) -> list[tuple[str, str]]:
    """(label, url): 'dagster_run' reads 'Dagster run'."""
    return [(name.replace("_", " ").capitalize(), url) for name, url in alert.links.items()]


def delivery_line(alert: AlertRecord) -> str:
    """The first line of every ticket text. The same alert always gives the same line, so a
    retry can see that a ticket, comment or note for this alert is already there."""
    return f"Watchkeeper alert {alert.fingerprint}: window {alert.window}, occurrence {alert.occurrence}, severity {alert.severity}"


def already_delivered(alert: AlertRecord, texts: list[str]) -> bool:
    """Whether any of `texts` (a description, comments) was written for this very alert."""
    line = delivery_line(alert)
    return any(text.split("\n", 1)[0] == line for text in texts)


def plain_text(alert: AlertRecord) -> str:
    """The whole alert as plain text with bullet lists: the body of tickets, comments and notes."""
    lines = [delivery_line(alert), "", alert.summary, ""]
    lines += [f"{label}: {value}" for label, value in headline(alert)]
    for title, items, more in evidence(alert) + ([("Links", links(alert), None)] if alert.links else []):
        lines += ["", f"{title}:"] + [f"* {name}: {text}" for name, text in items] + ([f"* {more}"] if more else [])
    return "\n".join(lines)
