"""Rendering escapes everything that came from data: the HTML report (attributes included), plot labels,
markdown tables, Slack, Teams, Jira and ServiceNow texts. Names are the hostile ones of the issue: mathtext
(`usd_$_to_$_eur`), an attribute break-out with `onerror=`, markdown, mentions, links, a newline that forges
a line. Channels are driven through their real client libraries against tests/standins.py."""

from __future__ import annotations

import dataclasses
import io
import json
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

import malformed as m
from cli.main import main
from test_malformed_data import ALERT, channel
from watchkeeper.alerting.channels.content import one_line, plain_text
from watchkeeper.plots import PlotError, drift_histograms, markdown_image, metric_history
from watchkeeper.tables import markdown_table

XSS = '"><img src=x onerror=alert(1)>('
FORGED = "income\n*Severity*: info\n<!channel> @here [click](https://evil.example) <https://evil.example|click>"
NAMES = ["usd_$_to_$_eur", "_$_", "back\\slash$", XSS, FORGED, "[~admin] {html}<b>x</b>{html} [code]<i>[/code]",
         "\u202egnp.exe", "x" * 500]


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


# ------------------------------------------------------------------------------------ HTML report

def test_html_report_shows_hostile_names_as_text(tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = m.ODD_NAMES
    reference = pd.DataFrame({names[0]: rng.normal(size=300), names[1]: rng.normal(size=300),
                              names[2]: rng.choice(["a", "b"], size=300)})
    current = reference.assign(**{names[0]: rng.normal(2, 1, size=300)})
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    assert main(["drift", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"),
                 "--format", "html", "--output", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    tags = elements(page)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert sorted(a["alt"] for a in images) == sorted(names), "each alt is exactly the feature's name"
    assert all(set(a) == {"alt", "src"} and a["src"].startswith("data:image/png;base64,") for a in images)
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs), "no event handler attribute"
    assert {tag for tag, _ in tags} <= {"html", "head", "meta", "title", "body", "h1", "p", "table", "tr", "th", "td",
                                        "figure", "img", "figcaption"}
    assert "default-src 'none'; img-src data:" in page       # scripts are refused even if something slipped


# -------------------------------------------------------------------------------------------- plots

def feature_for_plot(name: str) -> dict:
    return {"name": name, "effect_size": 0.3, "effect_metric": "wasserstein", "bin_labels": [name, "<= 1", "> 1"],
            "reference_share": [0.2, 0.5, 0.3], "current_share": [0.3, 0.4, 0.3]}


def test_names_that_matplotlib_would_read_as_mathtext_are_drawn():
    fig, ax = plt.subplots()
    ax.set_title("usd_$_to_$_eur")
    with pytest.raises(ValueError):          # what the drift pictures did before: mathtext on a name
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    before = plt.get_fignums()
    png = drift_histograms([feature_for_plot(n) for n in NAMES], "model usd_$_to_$_eur: $x$ vs $", limit=8)
    history = metric_history(["2026-11-08", "2026-$1-$9"], [0.8, 0.7], [0.7, None], [0.9, None], ["ok", "degraded"],
                             0.85, "usd_$_to_$_eur accuracy", alarms=[False, True])
    assert png.startswith(b"\x89PNG") and history.startswith(b"\x89PNG")
    assert plt.get_fignums() == before


def test_a_plot_that_cannot_be_drawn_is_one_plot_error_and_leaks_no_figure():
    before = plt.get_fignums()
    broken = feature_for_plot("x") | {"reference_share": [0.5, 0.5]}     # 2 heights for 3 bins
    with pytest.raises(PlotError, match=r"^drift_histograms could not be drawn \(ValueError: ") as raised:
        drift_histograms([broken], "m")
    assert "\n" not in str(raised.value) and plt.get_fignums() == before
    with pytest.raises(PlotError, match="KeyError"):
        drift_histograms([{"name": "x"}], "m")


# ----------------------------------------------------------------------------------------- markdown

def test_markdown_cells_and_alt_texts_cannot_break_out():
    rows = [{"name": name, "value": 0.5} for name in NAMES]
    rendered = MarkdownIt("commonmark").enable("table").render(markdown_table(rows, ["name", "value"]))
    parser = Elements()
    parser.feed(rendered)
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("tr") == len(NAMES) + 1 and tags.count("td") == 2 * len(NAMES)
    assert not {"a", "img", "script", "b", "i", "code", "em", "strong"} & set(tags)
    image = MarkdownIt("commonmark").render(markdown_image(b"\x89PNG", XSS + "](javascript:alert(1))"))
    [(tag, attrs)] = [t for t in elements(image) if t[0] == "img"]
    assert attrs["src"].startswith("data:image/png;base64,") and "javascript" not in attrs["src"]


# ----------------------------------------------------------------------------------------- channels

HOSTILE = dataclasses.replace(
    ALERT, model=FORGED, fingerprint=f"{FORGED}:1:data_drift", title=f"{FORGED} v1: data drift (warning)",
    summary=f"binary model {FORGED} v1: 1 of 3 features drifted",
    features=[{"name": name, "test": "ks", "statistic": 0.3, "p_value": 1e-9, "effect_size": 0.4,
               "effect_metric": "wasserstein"} for name in NAMES[:6]],
    metrics=[{"name": "[click](https://evil.example)", "value": 0.7, "reference": 0.8, "delta": -0.1}])


# The same alert with harmless names: the shape every rendering of HOSTILE must keep.
TAME = dataclasses.replace(HOSTILE, model="m", fingerprint="m:1:data_drift", title="t", summary="s",
                           features=[f | {"name": f"f{i}"} for i, f in enumerate(HOSTILE.features)],
                           metrics=[HOSTILE.metrics[0] | {"name": "auc"}])


def visible_lines(text: str) -> int:
    return text.count("\n") + 1


def test_slack_shows_names_verbatim_and_never_mentions(monkeypatch):
    with channel("slack", monkeypatch) as (standin, sender):
        sender.send(HOSTILE)
        [message] = standin.messages
        [post] = [r for r in standin.requests if r.path.endswith("chat.postMessage")]
    params = post.params()
    assert not {"link_names", "parse"} & set(params), "Slack is never asked to resolve names"
    assert "<!channel>" not in message["text"] and "&lt;!channel&gt;" in message["text"]
    assert "\n" not in message["text"]
    texts = [obj for block in message["blocks"] for obj in [block.get("text"), *block.get("fields", []),
                                                            *block.get("elements", [])] if obj]
    with_data = [t for t in texts if "evil" in json.dumps(t) or "channel" in json.dumps(t)]
    assert with_data and all(t["type"] == "plain_text" for t in with_data), "data only in plain_text"
    mrkdwn = [t["text"] for t in texts if t["type"] == "mrkdwn"]
    assert set(mrkdwn) <= {"*Impacted features*", "*Metrics*"}
    fields = message["blocks"][1]["fields"]
    assert all(visible_lines(f["text"]) == 1 for f in fields) and len(fields) == 5
    assert "Model: income\\n*Severity*: info\\n<!channel>" in fields[2]["text"]


def test_teams_shows_names_only_in_text_runs(monkeypatch):
    with channel("teams", monkeypatch) as (standin, sender):
        sender.send(HOSTILE)
        [card] = standin.cards
    blocks = card["body"]
    markdown = [b["text"] for b in blocks if b["type"] == "TextBlock"]
    assert set(markdown) <= {"Impacted features", "Metrics"}, "TextBlocks (Markdown) hold only our own words"
    runs = [run["text"] for b in blocks if b["type"] == "RichTextBlock" for run in b["inlines"]]
    assert all(run.get("type") == "TextRun" for b in blocks if b["type"] == "RichTextBlock" for run in b["inlines"])
    assert all("\n" not in run for run in runs) and any("<!channel>" in run for run in runs)
    assert "msteams" not in json.dumps(card).replace('"msteams": {"width": "Full"}', ""), "no mention entities"


def test_jira_escapes_wiki_markup_and_keeps_one_line_per_fact(monkeypatch):
    with channel("jira", monkeypatch) as (standin, sender):
        sender.send(HOSTILE)
        sender.send(dataclasses.replace(HOSTILE, window="2026-11-09", occurrence=2))
        [issue] = standin.issues
    description = issue["fields"]["description"]
    assert issue["fields"]["summary"] == one_line(HOSTILE.title) and "\n" not in issue["fields"]["summary"]
    for raw in ("[~admin]", "{html}", "[click]", "(https://evil.example)"):
        assert raw not in description
    assert "\\[\\~admin\\] \\{html\\}" in description and "\\[click\\]\\(https://evil.example\\)" in description
    assert [line for line in description.splitlines() if line.startswith("*Severity*")] == []
    assert description.count("\n") == plain_text(TAME).count("\n"), "names add no line"
    assert len(issue["comments"]) == 1, "the escaped delivery line still recognises its own comment"


def test_servicenow_breaks_code_tags(monkeypatch):
    with channel("servicenow", monkeypatch) as (standin, sender):
        sender.send(HOSTILE)
        sender.send(dataclasses.replace(HOSTILE, window="2026-11-09", occurrence=2))
        [incident] = standin.incidents
    for text in (incident["description"], *incident["work_notes"], incident["short_description"]):
        assert "[code]" not in text.lower() and "[/code]" not in text.lower()
    assert "[\u200bcode]<i>[\u200b/code]" in incident["description"]
    assert not any(line.startswith("*Severity*") for line in incident["description"].splitlines())
    assert incident["description"].count("\n") == plain_text(TAME).count("\n"), "names add no line"


def test_one_line_shows_every_invisible_character():
    assert one_line("a\nb\r\tc\u2028d\u202ee\x00") == "a\\nb\\r\\tc\\u2028d\\u202ee\\u0000"
