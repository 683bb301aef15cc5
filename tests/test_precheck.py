"""The cheap path of data quality (watchkeeper.precheck) gives the verdicts of Great Expectations alone.

Compared result by result (status and every problem) against the full suite: every window of
the demo, and planted bad windows of each kind the suite knows (missing column, wrong type,
out of range at warning and severe levels, null rate, unseen categories, too few rows, an
empty window, infinities). The pre-check must also actually take the cheap path on healthy
windows, or the equality would be trivial.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watchkeeper.precheck import PreCheck, audited, validate_window
from watchkeeper.profile import ReferenceProfile, fit_profile
from watchkeeper.quality import FAILED, PASSED, WARNING, QualityResult, QualitySuite

N = 2000


def same_verdict(profile: ReferenceProfile, frame: pd.DataFrame) -> tuple[QualityResult, bool]:
    """(the verdict of GX alone, whether the pre-check cleared it), asserting the paths agree."""
    alone = QualitySuite().fit(profile).validate(frame)
    cheap = validate_window(profile, frame, "m@d", audit_share=0.0)
    assert cheap.to_dict() == alone.to_dict()
    return alone, PreCheck.fit(profile).clear(frame)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, N)
    x[rng.random(N) < 0.05] = np.nan
    return pd.DataFrame({"x": x, "y": rng.uniform(10.0, 20.0, N), "n": rng.integers(0, 100, N),
                         "city": rng.choice(["paris", "oslo", "rome"], N)})


@pytest.fixture(scope="module")
def profile(reference) -> ReferenceProfile:
    return fit_profile(reference)


@pytest.fixture()
def window(reference) -> pd.DataFrame:
    frame = reference.sample(1000, replace=True, random_state=2).reset_index(drop=True)
    return frame.assign(prediction_id=[f"p{i}" for i in range(len(frame))], prediction=0.5)


def _outside(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: int(share * len(frame)) - 1, "y"] = 1e6
    return frame


def _nulls(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: int(share * len(frame)) - 1, "y"] = np.nan
    return frame


def _unseen(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: int(share * len(frame)) - 1, "city"] = "atlantis"
    return frame


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(n=frame["n"].astype(object).where(frame.index % 10 != 0, "n/a"))


def _infinite(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[:299, "x"] = np.inf
    return frame


PLANTED = {
    "missing column": (lambda w: w.drop(columns="y"), FAILED),
    "strings in a numeric column": (_strings, FAILED),
    "numeric column typed as text": (lambda w: w.assign(n=w["n"].astype(str)), FAILED),
    "out of range, warning": (lambda w: _outside(w, 0.05), WARNING),
    "out of range, severe": (lambda w: _outside(w, 0.30), FAILED),
    "out of range, just under the warning limit": (lambda w: _outside(w, 0.008), PASSED),
    "null rate, warning": (lambda w: _nulls(w, 0.08), WARNING),
    "null rate, severe": (lambda w: _nulls(w, 0.40), FAILED),
    "unseen categories, warning": (lambda w: _unseen(w, 0.05), WARNING),
    "unseen categories, severe": (lambda w: _unseen(w, 0.50), FAILED),
    "too few rows": (lambda w: w.head(50), WARNING),
    "empty window": (lambda w: w.head(0), FAILED),
    "infinities": (_infinite, FAILED),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_planted_bad_windows_get_the_verdict_of_gx_alone(profile, window, kind):
    plant, expected = PLANTED[kind]
    verdict, cleared = same_verdict(profile, plant(window))
    assert verdict.status == expected, verdict.describe()
    assert not cleared or expected == PASSED


def test_a_healthy_window_takes_the_cheap_path(profile, window):
    verdict, cleared = same_verdict(profile, window)
    assert verdict.status == PASSED and cleared


def test_a_sample_of_clear_windows_is_audited_by_gx():
    keys = [f"model-{i}@2026-11-20" for i in range(5000)]
    share = sum(audited(k, 0.02) for k in keys) / len(keys)
    assert 0.01 < share < 0.03
    assert audited(keys[0], 0.02) == audited(keys[0], 0.02)   # the same window, the same choice


@pytest.fixture(scope="module")
def demo_windows(tmp_path_factory) -> dict[str, tuple[ReferenceProfile, list[pd.DataFrame]]]:
    """The demo's models trained and registered as `watchkeeper demo` does, each with its reference
    profile (of the champion's training data, as reference_profile builds it) and its 14 windows
    as the demo's simulator writes them. Built here without the Dagster runs of the demo."""
    from watchkeeper.demo import Simulator, demo_days, train_and_register
    from watchkeeper.profile import fit_profile
    from watchkeeper.reference import TARGET
    from watchkeeper.registry import Registry

    home = tmp_path_factory.mktemp("demo_windows")
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    train_and_register(tracking_uri, home / "mlartifacts")
    simulator = Simulator(home, tracking_uri)
    for day in demo_days():
        simulator.release_day(day)
    registry, found = Registry(tracking_uri), {}
    for name, champion in registry.champions().items():
        train, _ = registry.reference_frames(champion)
        windows = [pd.read_parquet(p) for p in sorted((home / "inference" / name).glob("*.parquet"))]
        found[name] = (fit_profile(train.drop(columns=TARGET)), windows)
    return found


def test_every_demo_window_gets_the_verdict_of_gx_alone(demo_windows):
    cleared = checked = 0
    for profile, windows in demo_windows.values():
        for window in windows:
            _, clear = same_verdict(profile, window)
            cleared, checked = cleared + clear, checked + 1
    assert checked == 3 * 14
    assert cleared >= checked // 3, f"the pre-check cleared only {cleared} of {checked} demo windows"
