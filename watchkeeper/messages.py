"""Messages about outside things, fit for one line of a log, a skip reason or a table cell."""

from __future__ import annotations


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """`error`'s message with its white space (newlines included) folded, cut to `limit`
    characters; the exception's type when it has no message.

    >>> one_line(ValueError("bad\\n  value"))
    'bad value'
    """
    text = " ".join(str(error).split())[:limit]
    return text or type(error).__name__


def verdict_text(reasons: list[dict], with_history: bool = True) -> str:
    """A verdict's reasons as one paragraph of whole sentences: each reason's detail is a sentence
    (watchkeeper.health writes them so), joined by a space, never by `;` (which read `.;`)."""
    return " ".join(r["detail"] for r in reasons if with_history or r["signal"] != "history")
