"""Markdown tables: the lingua franca of the Dagster UI, the text report and the README.

Cells come from data (feature and model names, problems found in a file), so they are
escaped: a name cannot end its cell (`|`), start a new row (a newline), open a link or an
image (`[`, `]`), a code span or math (`` ` ``, `$`), bold (`*`), or carry HTML (`<`, `>`,
`&`). An underscore inside a word is left alone: it is in most feature names, and there
CommonMark never reads it as emphasis.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that could inject,
# and an underscore unless it sits inside a word (where it never opens emphasis).
_MARKDOWN = re.compile(r"([\\`*\[\]|$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A markdown table of `columns` from `rows`; floats rounded to what a person reads."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def markdown_text(value: object) -> str:
    """Any text shown literally inside markdown: one line, markup and HTML escaped."""
    text = " ".join(str(value).split())
    text = _MARKDOWN.sub(r"\\\1", text)
    return "".join(_HTML.get(c, c) for c in text)


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return markdown_text(value)
