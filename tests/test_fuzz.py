"""Property-based fuzzing (hypothesis) of the profile loader and the drift engine.

The loader: whatever a saved profile is turned into, it is refused with one ProfileError line, or it
is accepted and then keeps every invariant and works in the engine. The engine: on any frame of numbers
(NaN, infinities, ties, constants, subnormals), text and booleans, fitting gives a valid profile or one
ProfileError; evaluation gives a JSON-safe report or one DriftInputError; a window compared with its own
reference never drifts; and every missing count is exactly the number of non-finite values.

Runs are derandomised (the same examples in CI as here) and keep no example database on disk.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import malformed as m
from watchkeeper.drift import DriftInputError, evaluate_drift
from watchkeeper.profile import MIN_REFERENCE_ROWS, NUMERIC, ProfileError, ReferenceProfile, fit_profile
from watchkeeper.profile_schema import check_profile

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SAVED = m.saved_profile(m.base_frame(1))
CURRENT = m.base_frame(2)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


def paths(node, prefix=()):
    """Every path to a value inside a JSON document, containers included."""
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from paths(child, (*prefix, key))


@st.composite
def mutated_profiles(draw) -> dict:
    """A saved profile with one to three parts replaced, deleted, reversed or duplicated."""
    profile = copy.deepcopy(SAVED)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(profile))[1:]))
        parent = profile
        for key in path[:-1]:
            parent = parent[key]
        key, action = path[-1], draw(st.sampled_from(["replace", "delete", "reverse", "nudge"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif action == "reverse" and isinstance(parent[key], list):
            parent[key] = parent[key][::-1]
        elif action == "nudge" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] + draw(st.sampled_from([-1, 1, 1e-9, -1e300]))
        else:
            parent[key] = draw(json_values)
    return profile


def assert_usable(profile: ReferenceProfile) -> None:
    """An accepted profile keeps its invariants and the engine evaluates a window against it."""
    check_profile(profile)
    frame = CURRENT.reindex(columns=list(profile.features), fill_value=1.0)
    try:
        report = evaluate_drift(profile, frame).to_dict()
    except DriftInputError as error:
        assert "\n" not in str(error)
        return
    assert_report(report, len(frame))


def assert_report(report: dict, rows: int) -> None:
    json.dumps(report, allow_nan=False)
    assert report["n_current"] == rows
    for f in report["features"]:
        assert f["p_value"] is None or 0 <= f["p_value"] <= 1
        assert f["effect_size"] is None or f["effect_size"] >= 0
        assert 0 <= f["missing_rate_current"] <= 1 and 0 <= f["missing_rate_reference"] <= 1


@FUZZ
@given(mutated_profiles())
def test_the_profile_loader_refuses_or_accepts_a_usable_profile(data):
    try:
        profile = ReferenceProfile.from_dict(data)
    except ProfileError as error:
        assert "\n" not in str(error) and str(error)
        return
    event("accepted")
    assert_usable(profile)


@FUZZ
@given(json_values)
def test_the_profile_loader_refuses_arbitrary_json_in_one_line(data):
    with pytest.raises(ProfileError) as raised:
        ReferenceProfile.from_dict(data)
    assert "\n" not in str(raised.value)


def numbers(limit: float):
    """Floats of every kind up to `limit` in magnitude, plus NaN and infinities."""
    return st.floats(-limit, limit) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 5e-324, -0.0])


@st.composite
def frames(draw, limit: float, rows: tuple[int, int]) -> pd.DataFrame:
    n = draw(st.integers(*rows))
    columns = {f"x{i}": draw(arrays(np.float64, n, elements=numbers(limit))) for i in range(draw(st.integers(1, 3)))}
    if draw(st.booleans()):
        columns["label"] = draw(st.lists(st.sampled_from(["a", "b", "", "ü", "x\ny", "$_$"]), min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["flag"] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return pd.DataFrame(columns)


def check_engine(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    try:
        profile = fit_profile(reference)
    except ProfileError as error:
        assert "\n" not in str(error)
        event("reference refused")
        return
    check_profile(profile)
    itself = evaluate_drift(profile, reference).to_dict()
    assert_report(itself, len(reference))
    assert itself["drifted_features"] == [], "a window identical to the reference drifted"
    report = evaluate_drift(profile, current).to_dict()
    assert_report(report, len(current))
    for f in report["features"]:
        if f["kind"] == NUMERIC:
            values = current[f["name"]].to_numpy(dtype=float)
            assert f["missing_rate_current"] == pytest.approx(np.mean(~np.isfinite(values))), f["name"]


@FUZZ
@given(st.data())
def test_the_drift_engine_on_any_numbers(data):
    reference = data.draw(frames(1e30, (MIN_REFERENCE_ROWS, 300)))
    current = data.draw(frames(1e30, (1, 300)))
    check_engine(reference, current.reindex(columns=reference.columns, fill_value=0.0))


@FUZZ
@given(st.data())
def test_the_drift_engine_keeps_the_float64_range(data):
    reference = data.draw(frames(1e30, (MIN_REFERENCE_ROWS, 300)))
    current = data.draw(frames(math.ldexp(1.0, 1023), (1, 300)))
    check_engine(reference, current.reindex(columns=reference.columns, fill_value=0.0))
