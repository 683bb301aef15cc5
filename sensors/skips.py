"""What a sensor skipped, reported where people look: the tick's log, and a plot in the UI.

A sensor never raises on an item it cannot use (a stray file, a registry entry it cannot
read, a bad verdict row): it skips that item, says why, and carries on with the rest, so
one bad item can neither fail a tick nor hold its cursor back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import dagster as dg

MAX_LISTED = 10          # items named in one log line
MAX_ROWS = 200           # items listed in an observation's table


def log_skipped(context: dg.SensorEvaluationContext, what: str, skipped: Mapping[str, str]) -> str | None:
    """Warn in the tick's log about what was skipped (names quoted, so no name can forge a log
    line); returns the line, or None when nothing was skipped."""
    if not skipped:
        return None
    named = "; ".join(f"{name!r}: {reason}" for name, reason in list(skipped.items())[:MAX_LISTED])
    more = f"; and {len(skipped) - MAX_LISTED} more" if len(skipped) > MAX_LISTED else ""
    line = f"skipped {len(skipped)} {what}: {named}{more}"
    context.log.warning(line)
    return line


def skipped_observation(key: dg.AssetKey, what: str, skipped: Mapping[str, str],
                        reported: str | None) -> tuple[list[dg.AssetObservation], str]:
    """An observation of `key` counting what is skipped now (a number, so the asset's Plots tab
    draws it) and listing it, when that differs from the `reported` digest; and the new digest.

    Emitted on change only, so a stray file costs one event, not one per tick, and its removal
    brings the count back to 0.
    """
    digest = hashlib.sha256(json.dumps(sorted(skipped.items())).encode()).hexdigest()[:16]
    if digest == reported:
        return [], digest
    rows = [dg.TableRecord({"item": name, "reason": reason}) for name, reason in list(skipped.items())[:MAX_ROWS]]
    schema = dg.TableSchema(columns=[dg.TableColumn("item", "string"), dg.TableColumn("reason", "string")])
    metadata = {f"skipped_{what}": dg.MetadataValue.int(len(skipped)),
                "skipped": dg.MetadataValue.table(rows, schema=schema)}
    return [dg.AssetObservation(asset_key=key, metadata=metadata)], digest
