"""The store's JSON columns that hold inference-derived state, encrypted at rest.

Reference profiles keep up to a few hundred raw reference values per feature (small
references keep their sorted values for exact tests), the reference's joint-drift detector is
fitted on reference rows, detector state summarises the error stream, and outbox and problem
payloads describe a model's data: these columns are sealed (watchkeeper.security.envelope,
``wke1:`` + base64 in the same text column, so no migration) when a KMS is configured. Every
other JSON column is aggregates and stays plain, so the exporter and the UI read it without a key.
Rows written before encryption was turned on stay readable.
"""

from __future__ import annotations

import json
from typing import Any

from watchkeeper.security.envelope import protect_text, reveal_text

SEALED = frozenset({"profile_json", "reference_json", "state_json", "payload_json"})


def stored_json(column: str, value: Any) -> str:
    """`value` as the text stored in `column` (sealed when the column is and a KMS is configured)."""
    text = json.dumps(value)
    return protect_text(text, f"store {column}") if column in SEALED else text


def loaded_json(column: str, text: str) -> Any:
    """The value stored in `column`; EncryptionError (one line) when it is sealed and cannot be opened."""
    return json.loads(reveal_text(text, f"store {column}") if column in SEALED else text)
