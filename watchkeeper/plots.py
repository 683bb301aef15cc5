"""Small PNG plots for reports: a picture of *why* a verdict was reached.

Plots are returned as PNG bytes so any front end can show them: the Dagster layer
embeds them as markdown images, the HTML report inlines them.

Names from data (features, models, windows, bin labels) are drawn as plain text: matplotlib
would otherwise read a name with two `$` (``usd_$_to_$_eur``) as mathtext and fail on it, so
every text is drawn with ``parse_math=False``. A plot that still cannot be drawn raises
PlotError, one line, which the caller records instead of failing the whole report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from functools import wraps

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from watchkeeper.decision import effect_text  # noqa: E402
from watchkeeper.tables import markdown_text  # noqa: E402

STATUS_COLOURS = {"ok": "#2e7d32", "drifted": "#f9a825", "degraded": "#c62828", "no_data": "#9e9e9e"}
PLAIN = {"parse_math": False}   # text from data is never mathtext
PNG_DPI = 90
MAX_LABEL_CHARS = 60            # a longer name is cut ("...") so one feature cannot blow the figure up


class PlotError(RuntimeError):
    """A plot could not be drawn; the one-line reason names the plot."""


def _plot(draw):
    """Turn any failure inside a plot function into a PlotError (and never leak an open figure)."""
    @wraps(draw)
    def wrapper(*args, **kwargs) -> bytes:
        opened = set(plt.get_fignums())
        try:
            return draw(*args, **kwargs)
        except Exception as error:  # matplotlib raises many types (ValueError, RuntimeError, ParseException...)
            for number in set(plt.get_fignums()) - opened:
                plt.close(number)
            reason = " ".join(str(error).split())[:200]
            raise PlotError(f"{draw.__name__} could not be drawn ({type(error).__name__}: {reason})") from None
    return wrapper


def label(text: object) -> str:
    """A name as a plot shows it: one line, at most MAX_LABEL_CHARS characters."""
    shown = " ".join(str(text).split())
    return shown if len(shown) <= MAX_LABEL_CHARS else shown[:MAX_LABEL_CHARS - 3] + "..."


# A drift picture is at most this wide (inches at PNG_DPI): 2 panels a row, ~590 px, which fits the
# Dagster UI's markdown dialog and a report page without being scaled down or cut off.
PANEL_INCHES, PANELS_PER_ROW = (3.3, 2.6), 2


@_plot
def drift_histograms(features: Sequence[dict], title: str, limit: int = 4) -> bytes:
    """Reference vs current distribution of the most drifted features, two panels a row; each
    panel names the feature and its effect size with the unit, and its axes say what they show."""
    ranked = sorted(features, key=lambda f: -(f.get("effect_size") or 0.0))[:limit]
    rows, columns = -(-max(len(ranked), 1) // PANELS_PER_ROW), min(max(len(ranked), 1), PANELS_PER_ROW)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.4),
                             squeeze=False)
    for ax, feature in zip(axes.flat, ranked):
        positions = range(len(feature["bin_labels"]))
        ax.bar([p - 0.2 for p in positions], feature["reference_share"], width=0.4, label="reference", color="#90a4ae")
        ax.bar([p + 0.2 for p in positions], feature["current_share"], width=0.4, label="current", color="#ef6c00")
        ax.set_title(f"{label(feature['name'])}: {effect_text(feature.get('effect_metric'), feature.get('effect_size'))}",
                     fontsize=8, **PLAIN)
        ticks = _bin_ticks(feature["bin_labels"])
        ax.set_xticks([p for p, _ in ticks], [t for _, t in ticks], rotation=45, ha="right", fontsize=7, **PLAIN)
        ax.set_xlabel("value (bin upper edge)" if feature.get("kind") == "numeric" else "category", fontsize=7)
        ax.set_ylabel("share of rows", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(ranked):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(label(title), fontsize=9, **PLAIN)
    return _png(fig)


MAX_TICKS = 8


def _bin_ticks(bin_labels: Sequence[str]) -> list[tuple[int, str]]:
    """At most MAX_TICKS short tick labels: a numeric bin `(a, b]` is labelled by its upper edge b
    (already rounded to 4 significant digits), the open ends by `<= a` and `> z`; categories as named."""
    short = [b[b.index(",") + 1:-1].strip() if b.startswith("(") and b.endswith("]") and "," in b else b
             for b in bin_labels]
    step = -(-len(short) // MAX_TICKS)
    return [(i, label(t)[:14]) for i, t in enumerate(short) if i % step == 0 or i == len(short) - 1]


@_plot
def metric_history(windows: Sequence[str], values: Sequence[float | None], lower: Sequence[float | None],
                   upper: Sequence[float | None], statuses: Sequence[str], reference: float | None,
                   title: str, alarms: Sequence[bool] = (), metric_name: str = "") -> bytes:
    """A metric over windows with its confidence band, the reference line, verdict colours, and
    a dotted line on each window where a concept-drift detector raised an alarm."""
    fig, ax = plt.subplots(figsize=(8, 3))
    x = range(len(windows))
    for n, i in enumerate(i for i, alarm in zip(x, alarms) if alarm):
        ax.axvline(i, color="#6a1b9a", linestyle=":", linewidth=1.5, label=None if n else "concept-drift alarm")
    band = [(i, lo, hi) for i, lo, hi in zip(x, lower, upper) if lo is not None and hi is not None]
    if band:
        ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band], alpha=0.25, label="90% CI")
    points = [(i, v) for i, v in zip(x, values) if v is not None]
    ax.plot([p[0] for p in points], [p[1] for p in points], color="#37474f", linewidth=1)
    for status, colour in STATUS_COLOURS.items():
        shown = [(i, v) for i, v, s in zip(x, values, statuses) if s == status and v is not None]
        if shown:
            ax.scatter([p[0] for p in shown], [p[1] for p in shown], color=colour, zorder=3, s=25, label=status)
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="#1565c0", linewidth=1, label="reference")
    ax.set_xticks(list(x), [label(w[5:]) for w in windows], rotation=45, fontsize=7, **PLAIN)
    ax.set_xlabel("window (month-day)", fontsize=7)
    ax.set_ylabel(label(metric_name) if metric_name else "metric", fontsize=7, **PLAIN)
    ax.set_title(label(title), fontsize=9, **PLAIN)
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI (base64 only, so it is safe inside any HTML attribute or markdown link)."""
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def markdown_image(png: bytes, alt: str) -> str:
    """Inline a PNG in markdown (a data URI), so it renders without any file server; `alt` is escaped."""
    return f"![{markdown_text(alt)}]({data_uri(png)})"


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=PNG_DPI)
    finally:
        plt.close(fig)
    return buffer.getvalue()
