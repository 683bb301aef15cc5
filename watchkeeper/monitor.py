"""One window of every monitored model, evaluated in one loop with failures kept local.

The evaluation of a window is five stages (watchkeeper.stages): the window itself (read,
checked, kept, data quality), its drift, its performance, the concept-drift detectors, and
the verdict with its alerts. `WindowMonitor.evaluate` runs the stages a caller asks for, model
by model: each model's reference is decoded once and its window read once, and whatever goes
wrong for one model — an unreadable file, a bad schema, a corrupt reference, an exception in a
drift-test plugin — is recorded as that model's failure with a one-line reason, while every
other model completes. A model with a failure gets a `failed` verdict naming it; the failure
stands in the store until the stage succeeds for that window (a re-run after the fix).

The verdict, its problem-log entries, the alerts they queue and their audit entries commit in
one transaction, so a process killed at any point leaves each model-window either fully decided
(and audited) or not at all, and re-running it (a retry) counts nothing twice. A re-run adds a
new version of the verdict; the earlier ones stay readable, each with its lineage (the versions
of the rows, profile, model and code it was computed from: watchkeeper.lineage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import pandas as pd
import sqlalchemy as sa
from threadpoolctl import threadpool_limits

from watchkeeper.alerting.builder import build_alerts
from watchkeeper.alerting.policy import Plan, Policy
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.config import MonitoringConfig
from watchkeeper.feature_store import FeastFeatures
from watchkeeper.health import FAILED, Verdict
from watchkeeper.inference_log import InferenceInputError, InferenceLog
from watchkeeper.lineage import EMPTY, Lineage, code_version, frame_version, profile_version
from watchkeeper.memory import retain_freed_memory
from watchkeeper.messages import one_line
from watchkeeper.problems import ProblemLog
from watchkeeper.quality import QualityResult
from watchkeeper.reference import ModelReference
from watchkeeper.security.audit import ALERT_QUEUED, EVALUATED, VERDICT, Actor
from watchkeeper.security.residency import ResidencyError, audit_refusal
from watchkeeper.shards import Shard
from watchkeeper.stages import STAGES, Stage, StageContext, WindowMetrics, judge
from watchkeeper.store import MonitoringStore, StoredFailure, StoredProfile
from watchkeeper.telemetry import evaluation_span

WINDOW, DRIFT, PERFORMANCE, CONCEPT, HEALTH = "window", "drift", "performance", "concept", "health"
REFERENCE = "reference"   # the stage name of a reference that cannot be decoded
ORDER = (WINDOW, DRIFT, PERFORMANCE, CONCEPT, HEALTH)
Links = Callable[[str, str], dict[str, str]]


@dataclass
class ModelWindow:
    """What one evaluation found for one model's window (what the caller shows)."""

    model: str
    version: str
    window: str
    reference: ModelReference | None = None     # None: the stored reference could not be decoded
    rows: int | None = None                     # None: the window stage did not run
    problems: list[str] = field(default_factory=list)
    quality: QualityResult | None = None
    drift: dict | None = None
    drift_blocked: str | None = None            # why drift was not computed (data quality)
    metrics: WindowMetrics | None = None
    alarms: dict[str, int] = field(default_factory=dict)   # stream -> alarms raised this window
    verdict: Verdict | None = None
    plans: dict[str, Plan] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)   # what the window raised, kept across reruns
    failures: dict[str, str] = field(default_factory=dict)  # stage -> reason, from this run
    lineage: Lineage | None = None              # what the verdict was computed from
    revision: int | None = None                 # the verdict's version number for this window

    @property
    def failed(self) -> bool:
        return bool(self.failures) or (self.verdict is not None and self.verdict.status == FAILED)


class WindowMonitor:
    """Evaluates windows for every model with a reference in the store."""

    def __init__(self, store: MonitoringStore, log: InferenceLog, config: MonitoringConfig,
                 policy: Policy | None = None, links: Links = lambda model, version: {},
                 actor: Actor | None = None, features: FeastFeatures | None = None) -> None:
        self.store, self.log, self.config, self.policy, self.links = store, log, config, policy, links
        self.actor = actor or Actor()
        self.features = features   # Feast: where windows of entity rows get their features
        self.problem_log = ProblemLog(store)

    def evaluate(self, day: str, stages: Iterable[str] = ORDER, models: Iterable[str] | None = None,
                 shard: Shard = Shard()) -> list[ModelWindow]:
        """Run `stages` (in their fixed order) for `models` (default: every model) of `shard`
        (default: the whole fleet) on `day`."""
        wanted = [s for s in ORDER if s in set(stages)]
        unknown = set(stages) - set(ORDER)
        if unknown:
            raise ValueError(f"unknown stages: {', '.join(sorted(unknown))} (known: {', '.join(ORDER)})")
        retain_freed_memory()   # the next model's arrays reuse this one's memory (watchkeeper.memory)
        asked = None if models is None else list(models)
        chosen = None if asked is None else set(asked)
        references = self.store.latest_profiles(   # only this shard's references are decoded
            lambda model: (chosen is None or model in chosen) and (shard.whole or shard.holds(model)))
        names = sorted(references) if asked is None else [m for m in asked if m in references]
        with threadpool_limits(1, user_api="blas"):   # a model's matrix products are small: BLAS threads only spin
            return [self._model(references[name], day, wanted) for name in names]

    def _model(self, stored: StoredProfile, day: str, stages: list[str]) -> ModelWindow:
        outcome = ModelWindow(stored.model, stored.version, day)
        outcome.lineage = Lineage(EMPTY, profile_version(stored), stored.version, code_version())
        try:
            reference = ModelReference.from_stored(stored)
        except ValueError as error:
            self._record_failure(outcome, REFERENCE, error)
            if HEALTH in stages:
                self._decide(outcome, None)
            return outcome
        standing = {f.stage for f in self.store.failures(stored.model, day)}   # what a success must clear
        if REFERENCE in standing:
            self.store.clear_failure(stored.model, day, REFERENCE)
        outcome.reference = reference
        context = StageContext(day, reference, self.store, self.log, self.config.for_model(stored.model),
                               self.features)
        for name in stages:
            if name == HEALTH:
                self._decide(outcome, context)
            elif not (STAGES[name].needs_window and _empty(context.frame())):
                self._run(STAGES[name], name, context, outcome, standing)
        if HEALTH not in stages:   # a verdict audits its evaluation; without one, audit the stages
            outcome.lineage = replace(outcome.lineage, data_version=_data_version(context))
            self.store.audit(EVALUATED, stored.model, self.actor.name, self.actor.run_id, day,
                             {"version": stored.version, "stages": stages, "failures": outcome.failures,
                              "lineage": outcome.lineage.to_dict()})
        return outcome

    def _run(self, stage: Stage, name: str, context: StageContext, outcome: ModelWindow, standing: set[str]) -> None:
        """One stage for one model; what it raises becomes the model's failure, nothing more. Its
        success clears the failure it had in the store (`standing`, read once per model: a
        transaction per stage to delete nothing was most of a healthy window's store writes)."""
        with evaluation_span(stage.span, outcome.model, outcome.version, outcome.window) as step:
            try:
                stage.run(context, outcome, step)
            except Exception as error:   # one model's bad input or plugin must not stop the fleet
                step.fail(error)
                self._record_failure(outcome, name, error)
                return
        if name in standing:
            self.store.clear_failure(outcome.model, outcome.window, name)

    def _record_failure(self, outcome: ModelWindow, stage: str, error: BaseException) -> None:
        reason = failure_reason(error)
        outcome.failures[stage] = reason
        with self.store.transaction() as tx:
            self.store.put_failure(outcome.model, outcome.window, stage, outcome.version, reason, tx=tx)
            if isinstance(error, ResidencyError):   # refused before a byte left: audited with the failure
                audit_refusal(self.store, error, self.actor, outcome.window, tx=tx)

    def _decide(self, outcome: ModelWindow, context: StageContext | None) -> None:
        """The verdict, its problems and their notifications, in one transaction."""
        model, version, day = outcome.model, outcome.version, outcome.window
        with evaluation_span("model_health", model, version, day) as step:
            standing = self.store.failures(model, day)
            verdict = failed_verdict(standing) if standing or context is None else judge(context, outcome)
            step.set(status=verdict.status)
            latest = day >= (self.store.latest_window(model) or day)   # an older window resolves nothing
            task = context.reference.task if context else "unknown"
            alerts = build_alerts(model, version, day, task, verdict.status, verdict.reasons, self.links(model, version))
            outcome.lineage = replace(outcome.lineage, data_version=_data_version(context))
            with self.store.transaction() as tx:
                outcome.revision = self.store.put_health(model, day, version, verdict.status, verdict.reasons, tx=tx,
                                                         lineage=outcome.lineage.to_dict(), run_id=self.actor.run_id)
                if self.policy is not None:
                    outcome.plans = self.problem_log.record(model, version, day, alerts, self.policy, latest, tx=tx)
                self._audit(outcome, verdict, tx)
        outcome.verdict = verdict
        if self.policy is not None:
            outcome.alerts = [AlertRecord.from_dict(a.payload) for a in self.problem_log.window_alerts(model, day)]

    def _audit(self, outcome: ModelWindow, verdict: Verdict, tx: sa.Connection) -> None:
        """The verdict and the alerts it queued, in the verdict's transaction."""
        who, model, day = self.actor, outcome.model, outcome.window
        self.store.audit(VERDICT, model, who.name, who.run_id, day, tx=tx, details={
            "version": outcome.version, "status": verdict.status, "revision": outcome.revision,
            "failures": outcome.failures, "lineage": outcome.lineage.to_dict()})
        for fingerprint, plan in outcome.plans.items():
            if plan.dispatches:
                self.store.audit(ALERT_QUEUED, fingerprint, who.name, who.run_id, day, tx=tx, details={
                    "channels": [d.channel for d in plan.dispatches], "held": dict(plan.held)})


def failed_verdict(standing: list[StoredFailure]) -> Verdict:
    """A window that could not be evaluated: which stage failed and why, one reason each."""
    return Verdict(FAILED, [{"signal": "evaluation", "stage": f.stage, "detail": f"{f.stage}: {f.reason}"}
                            for f in standing])


def failure_reason(error: BaseException) -> str:
    """The error as one line: our input errors say what is wrong; others also say what they are."""
    own = isinstance(error, (ValueError, ResidencyError)) and type(error).__module__.startswith("watchkeeper")
    return one_line(error, 500) if own else one_line(f"{type(error).__name__}: {error}", 500)


def _data_version(context: StageContext | None) -> str:
    """The version of the rows the verdict was computed from (the kept window)."""
    if context is None:
        return EMPTY
    try:
        return frame_version(context.frame())
    except InferenceInputError:   # the window stage failed on it: the verdict is `failed`, say so
        return "unreadable"


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty
