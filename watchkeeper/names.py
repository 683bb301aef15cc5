"""What may name a monitored model.

A model's name becomes a Dagster partition key, a folder of the inference drop folder, a
column of the monitoring store (200 characters) and a label of every metric, so it must be
valid as all four. Names from outside (MLflow registry entries, drop-folder folders) are
checked here, and one that fails is skipped with the reason, never passed on.
"""

from __future__ import annotations

import unicodedata

MAX_MODEL_NAME = 200


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot name a monitored model, in words, or None when it can.

    >>> model_name_problem("churn eu") is None
    True
    >>> model_name_problem("a...b")
    "contains '...' (not allowed in a Dagster partition key)"
    """
    if not name:
        return "is empty"
    if len(name) > MAX_MODEL_NAME:
        return f"is longer than {MAX_MODEL_NAME} characters"
    if name != name.strip():
        return "starts or ends with white space"
    if name.startswith("."):
        return "starts with a dot (a hidden folder)"
    if "/" in name or "\\" in name:
        return "contains a slash"
    if "..." in name:
        return "contains '...' (not allowed in a Dagster partition key)"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        return "contains control or invisible characters"
    return None
