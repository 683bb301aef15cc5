"""A promotion that waits for a person: its change request, and what approving it does.

When the gate says a challenger wins but the policy says `approval: ticket`, the retrain job
raises a `promotion_approval` problem, which the problem log records as an ITIL change (a
Jira issue of the change type, a ServiceNow change_request). Approving it — in the ticket
(read back by the ticket sync) or with `watchkeeper approve --model M --version V` — moves
the `champion` alias to the challenger (the old champion keeps `previous_champion`, so a
rollback is one alias move), records who approved it on the version, and resolves the change
with a note that the ticket receives. The registry sensor then sees the new champion and
profiles it: the loop closes with no further step.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlflow.exceptions import MlflowException

from watchkeeper.alerting.record import CHANGE, AlertRecord
from watchkeeper.messages import one_line
from watchkeeper.problems import PROMOTION, ProblemLog, fingerprint
from watchkeeper.registry import Registry
from watchkeeper.retraining.gate import GATE_STATUS_TAG, NEEDS_APPROVAL, PROMOTED, promote
from watchkeeper.security.audit import PROMOTED as PROMOTED_ENTRY

APPROVED_BY_TAG = "watchkeeper.approved_by"


class ApprovalError(ValueError):
    """A promotion that cannot be approved (no such version, not waiting for approval); one line."""


def approval_alert(model: str, version: str, window: str, reason: str, links: Mapping[str, str]) -> AlertRecord:
    """The change request for promoting challenger `version`, with the gate's reason."""
    return AlertRecord(fingerprint(model, version, PROMOTION), model, version, window, "warning", PROMOTION,
                       f"Approve challenger version {version} of {model}?",
                       f"{reason}. Approve it in this ticket, or run: watchkeeper approve --model {model} "
                       f"--version {version}", links=dict(links), record=CHANGE)


def approve_promotion(registry: Registry, log: ProblemLog, model: str, version: str, by: str) -> str:
    """Promote the challenger a person approved and resolve its change; returns what was done."""
    try:
        details = registry.client.get_model_version(model, version)
    except MlflowException as error:
        raise ApprovalError(f"{model} v{version}: {one_line(str(error.message).splitlines()[0], 200)}") from None
    status = details.tags.get(GATE_STATUS_TAG)
    if status != NEEDS_APPROVAL:
        raise ApprovalError(f"{model} v{version} is not waiting for approval (gate status: {status or 'none'})")
    previous = promote(registry, model, version)
    registry.client.set_model_version_tag(model, version, APPROVED_BY_TAG, by)
    registry.client.set_model_version_tag(model, version, GATE_STATUS_TAG, PROMOTED)
    replaced = f", replacing v{previous}" if previous else ""
    note = f"Approved by {by}: {model} v{version} is now the champion{replaced}."
    log.store.audit(PROMOTED_ENTRY, model, actor=by, partition=model,
                    details={"version": version, "replaces": previous, "approved_by": by})
    log.resolve(fingerprint(model, version, PROMOTION), note, by=by)
    return note
