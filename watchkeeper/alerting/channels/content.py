"""What an alert says, as short labelled text, before any channel's markup.

Every channel shows the same evidence: the headline facts, the impacted features with their
test statistics, the metric deltas with their intervals, and links to look further. Only
aggregates from the AlertRecord reach a message, never rows. Long lists are cut at
MAX_ITEMS and the cut is stated ("and 7 more features"), never silent.

Names in an alert (model, version, features, metrics, tests) come from data, so each is
made one visible line first (`one_line`: a newline, a tab or an invisible or bidirectional
control character is shown as an escape like ``\\n``, so it cannot start a forged line or
reorder what is shown), then passed through the channel's `escape` for its markup (Jira wiki
markup, ServiceNow journal tags). Slack and Teams put these texts in plain-text elements,
which their clients never parse, so they need no further escape.

>>> feature_line({"name": "income", "test": "ks", "statistic": 0.2134, "p_value": 3.1e-08,
...               "effect_size": 0.34, "effect_metric": "psi"})
'ks statistic 0.2134, p=3.10e-08, psi 0.34'
>>> metric_line({"name": "auc", "value": 0.81, "lower": 0.79, "upper": 0.83, "reference": 0.87, "delta": -0.06})
'0.81 [0.79, 0.83], Δ -0.06 vs reference 0.87'
>>> one_line("income\\n*Severity*: info\\u202e")
'income\\\\n*Severity*: info\\\\u202e'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime

from watchkeeper.alerting.channels.severity import itil_fields, priority_label
from watchkeeper.alerting.record import RAISED, AlertRecord

MAX_ITEMS = 10
Escape = Callable[[str], str]
# Control, format (bidi overrides, zero-width), line and paragraph separators: shown, never obeyed.
INVISIBLE = ("Cc", "Cf", "Zl", "Zp")
_SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def plain(text: str) -> str:
    """The escape of a channel whose texts are never parsed as markup."""
    return text


def one_line(value: object) -> str:
    """A value from data as one visible line: invisible and line-breaking characters as escapes."""
    return "".join(_SHOWN.get(c, f"\\u{ord(c):04x}") if unicodedata.category(c) in INVISIBLE else c
                   for c in str(value))


def fmt(value: float | int | None, signed: bool = False) -> str:
    """A number a person reads at a glance: 4 significant digits, scientific when tiny or huge."""
    if value is None:
        return "n/a"
    sign = "+" if signed else ""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:{sign}.4g}"
    return f"{value:{sign}.2e}"


def headline(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, str]]:
    itil = itil_fields(alert.severity)
    windows = "window" if alert.occurrence == 1 else "windows"

    def shown(value: object) -> str:
        return escape(one_line(value))

    return [
        ("Severity", f"{alert.severity} (P{itil.priority} {priority_label(itil.priority)})"),
        ("Kind", shown(alert.kind.replace("_", " "))),
        ("Model", f"{shown(alert.model)} v{shown(alert.version)}"),
        ("Window", shown(alert.window)),
        ("Persisting", f"{int(alert.occurrence)} {windows}"),
    ]


def feature_line(feature: dict, escape: Escape = plain) -> str:
    test = escape(one_line(feature.get("test") or "test"))
    text = f"{test} statistic {fmt(feature.get('statistic'))}, p={fmt(feature.get('p_value'))}"
    if feature.get("effect_size") is not None:
        text += f", {escape(one_line(feature.get('effect_metric') or 'effect'))} {fmt(feature['effect_size'])}"
    return text


def metric_line(metric: dict) -> str:
    text = fmt(metric.get("value"))
    if metric.get("lower") is not None or metric.get("upper") is not None:
        text += f" [{fmt(metric.get('lower'))}, {fmt(metric.get('upper'))}]"
    if metric.get("delta") is not None:
        text += f", Δ {fmt(metric['delta'], signed=True)} vs reference {fmt(metric.get('reference'))}"
    return text


def alarm_line(alarm: dict, escape: Escape = plain) -> str:
    """'adwin at 2026-11-08 10:02:11 (index 1234): error rate 0.12 -> 0.41'"""
    where = _to_the_second(alarm.get("timestamp")) or "an earlier window"
    text = f"{escape(one_line(alarm.get('detector') or 'detector'))} at {escape(one_line(where))}"
    text += f" (index {int(alarm['index'])})" if isinstance(alarm.get("index"), int) else ""
    before, after = alarm.get("error_rate_before"), alarm.get("error_rate_after")
    if before is not None or after is not None:
        text += f": error rate {fmt(before)} -> {fmt(after)}"
    return text


def _to_the_second(timestamp: object) -> str | None:
    """A time as a person reads it ('2026-11-08 10:02:11+00:00', not its microseconds); text that
    is not a time is kept as it came."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(str(timestamp)).isoformat(sep=" ", timespec="seconds")
    except ValueError:
        return str(timestamp)


def alarms(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, str]]:
    """("alarm N", detector, time and the error rate before and after it) for the first MAX_ITEMS alarms."""
    return [(f"alarm {i}", alarm_line(a, escape)) for i, a in enumerate(alert.alarms[:MAX_ITEMS], 1)]


def segments(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, str]]:
    """(segment, its primary metric's change against the reference), the worst first."""
    return [(escape(one_line(s.get("segment"))), f"Δ {fmt(s.get('delta'), signed=True)} vs reference")
            for s in alert.segments[:MAX_ITEMS]]


def features(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, str]]:
    """(feature name, evidence) for the first MAX_ITEMS impacted features."""
    return [(escape(one_line(f.get("name"))), feature_line(f, escape)) for f in alert.features[:MAX_ITEMS]]


def metrics(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, str]]:
    """(metric name, value with interval and delta) for the first MAX_ITEMS metrics."""
    return [(escape(one_line(m.get("name"))), metric_line(m)) for m in alert.metrics[:MAX_ITEMS]]


def omitted(items: list, noun: str) -> str | None:
    """'and 7 more features' when a list was cut at MAX_ITEMS, else None."""
    extra = len(items) - MAX_ITEMS
    return f"and {extra} more {noun} (see the links)" if extra > 0 else None


def evidence(alert: AlertRecord, escape: Escape = plain) -> list[tuple[str, list[tuple[str, str]], str | None]]:
    """The non-empty evidence sections: (title, [(name, text)], "and N more ..." or None)."""
    sections = [("Impacted features", features(alert, escape), omitted(alert.features, "features")),
                ("Metrics", metrics(alert, escape), omitted(alert.metrics, "metrics")),
                ("Detector alarms", alarms(alert, escape), omitted(alert.alarms, "alarms")),
                ("Affected segments", segments(alert, escape), omitted(alert.segments, "segments"))]
    return [section for section in sections if section[1]]


def links(alert: AlertRecord) -> list[tuple[str, str]]:
    """(label, url): 'dagster_run' reads 'Dagster run'."""
    return [(one_line(name.replace("_", " ").capitalize()), url) for name, url in alert.links.items()]


def delivery_line(alert: AlertRecord, escape: Escape = plain) -> str:
    """The first line of every ticket text. The same alert always gives the same line, so a
    retry can see that a ticket, comment or note for this alert is already there."""
    what = "alert" if alert.event == RAISED else alert.event
    return escape(one_line(f"Watchkeeper {what} {alert.fingerprint}: window {alert.window}, "
                           f"occurrence {alert.occurrence}, severity {alert.severity}"))


def already_delivered(alert: AlertRecord, texts: list[str], escape: Escape = plain) -> bool:
    """Whether any of `texts` (a description, comments) was written for this very alert."""
    line = delivery_line(alert, escape)
    return any(text.split("\n", 1)[0] == line for text in texts)


def plain_text(alert: AlertRecord, escape: Escape = plain) -> str:
    """The whole alert as text with bullet lists: the body of tickets, comments and notes."""
    lines = [delivery_line(alert, escape), "", escape(one_line(alert.summary)), ""]
    lines += [f"{label}: {value}" for label, value in headline(alert, escape)]
    link_items = [(escape(label), url) for label, url in links(alert)]
    for title, items, more in evidence(alert, escape) + ([("Links", link_items, None)] if alert.links else []):
        lines += ["", f"{title}:"] + [f"* {name}: {text}" for name, text in items] + ([f"* {more}"] if more else [])
    return "\n".join(lines)
