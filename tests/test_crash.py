"""A crash between reading a window and queueing its alerts loses and doubles nothing.

The day after the demo is evaluated through Dagster's multiprocess executor (as `dagster dev`
and the daemon run it). wine_classifier, healthy so far, drifts that day (a new problem);
diabetes_regressor and breast_cancer_classifier keep their problems (one more occurrence
each). The step process is SIGKILLed once, while it evaluates wine_classifier — after the
other two models committed everything — at each point between reading its window and queueing
its alert; the step's RetryPolicy runs it again. The problem log and the outbox must then be
exactly what an evaluation without the crash leaves: every alert once, every occurrence
counted once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import demo_copy, next_day_environment, replayed_day
from crash_location import POINTS
from watchkeeper.store.audit_rows import verify_trail

pytestmark = pytest.mark.slow
DAY, VICTIM = "2026-11-15", "wine_classifier"


def drifted(frame):
    """wine's inputs move up in several features at once, within their reference ranges (so the
    window passes data quality and its drift is judged)."""
    for column in ("alcohol", "malic_acid", "color_intensity", "proline"):
        frame[column] = frame[column].clip(lower=frame[column].quantile(0.6))
    return frame


def evaluate(home, monkeypatch, crash_at: str | None) -> tuple[bool, list[str]]:
    """The day evaluated in a fresh multiprocess run; (run succeeded, step events) afterwards."""
    import dagster as dg

    from watchkeeper.inference_log import INFERENCE, InferenceLog

    for name, value in next_day_environment(home).items():   # the demo's keys read its sealed files
        monkeypatch.setenv(name, value)
    log = InferenceLog(home)
    for model, frame in replayed_day(log, DAY).items():
        (drifted(frame) if model == VICTIM else frame).to_parquet(log.root / INFERENCE / model / f"{DAY}.parquet")
    monkeypatch.setenv("WATCHKEEPER_CRASH_AT", crash_at or "")
    monkeypatch.setenv("WATCHKEEPER_CRASH_MODEL", VICTIM)
    monkeypatch.setenv("WATCHKEEPER_CRASH_MARKER", str(home / "crashed"))
    job = dg.build_reconstructable_job("crash_location", "evaluate_window_job",
                                       reconstructor_working_directory=str(Path(__file__).parent))
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        result = dg.execute_job(job, instance, tags={"dagster/partition": DAY})
        events = [e.event_type_value for e in result.all_events if e.is_step_event]
    return result.success, events


def outcome(home) -> tuple[set, set]:
    """(problems as (fingerprint, state, occurrence), outbox rows as (fingerprint, channel, occurrence, event))."""
    engine = sa.create_engine(f"sqlite:///{home / 'monitoring.db'}")
    with engine.connect() as conn:
        problems = set(conn.execute(sa.text("SELECT fingerprint, state, occurrence FROM problems")).all())
        rows = conn.execute(sa.text("SELECT fingerprint, channel, occurrence, event FROM outbox")).all()
    engine.dispose()
    assert len(rows) == len(set(rows)), "an alert was queued twice"
    return problems, set(rows)


@pytest.fixture(scope="module")
def clean(demo, tmp_path_factory):
    home = demo_copy(demo[0], tmp_path_factory.mktemp("clean") / "demo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        success, _ = evaluate(home, monkeypatch, None)
    assert success
    return outcome(home)


def test_the_clean_day_opens_a_new_problem_and_keeps_the_old_ones_open_until_resolved(clean):
    """What the crashed runs must reproduce: wine's new problem queued once; the others' problems
    still open with their counts (the day is healthy for them: no labels have arrived, and diabetes'
    drift, eight days old, is no longer unusual for its own history; but one healthy window is not
    the two the lifecycle needs to resolve a problem) and none queued again."""
    problems, rows = clean
    states = {fingerprint: (state, occurrence) for fingerprint, state, occurrence in problems}
    assert states[f"{VICTIM}:1:data_drift"] == ("open", 1)
    assert [r for r in rows if r[0].startswith(VICTIM)] == [(f"{VICTIM}:1:data_drift", "outbox", 1, "raised")]
    assert states["diabetes_regressor:1:data_drift"] == ("open", 7)
    assert states["breast_cancer_classifier:1:performance"][0] == "open"


@pytest.mark.parametrize("point", sorted(POINTS))
def test_a_step_killed_at_any_point_is_retried_to_the_same_result(point, clean, demo, tmp_path, monkeypatch):
    home = demo_copy(demo[0], tmp_path / "demo")
    success, events = evaluate(home, monkeypatch, point)
    assert (home / "crashed").read_text().startswith("killed after"), "the crash was planted"
    assert success and "STEP_UP_FOR_RETRY" in events and "STEP_RESTARTED" in events
    assert outcome(home) == clean
    engine = sa.create_engine(f"sqlite:///{home / 'monitoring.db'}")
    assert verify_trail(engine)[1] is None                                   # no half-written entry
    with engine.connect() as conn:   # the killed transaction left no verdict version of the victim behind
        versions = conn.execute(sa.text("SELECT count(*) FROM verdict_versions WHERE model = :m AND \"window\" = :d"),
                                {"m": VICTIM, "d": DAY}).scalar()
    engine.dispose()
    assert versions == 1
