"""Concept drift on error streams: detection, false alarms, resumable state, and `watchkeeper stream`."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.main import main
from watchkeeper.concept import (
    AUTO_CLOCK,
    AUTO_DELTA,
    AutoDetector,
    StreamInputError,
    StreamState,
    detect,
    label_alarms,
    make_detector,
    prediction_stream_signal,
    resume,
    scan,
    with_error_rates,
)

CHANGE = 20_000


def bernoulli_jump(seed: int, before: float = 0.1, after: float = 0.2, n_after: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(CHANGE) < before, rng.random(n_after) < after]).astype(np.int8)


def halfnormal_jump(seed: int, ratio: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(np.concatenate([rng.normal(0, 1, CHANGE), rng.normal(0, ratio, CHANGE)]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_finds_a_10_to_20_percent_jump_quickly(seed):
    alarms = detect(bernoulli_jump(seed))
    after = [a for a in alarms if a >= CHANGE]
    assert after and after[0] - CHANGE < 1_000, alarms  # bench: mean delay ~250
    assert len(alarms) - len(after) <= 1  # ~0.3 false alarms per 100k: seed 2 has one at 9,023


def test_auto_is_quiet_on_a_stationary_stream():
    stationary = (np.random.default_rng(7).random(200_000) < 0.1).astype(np.int8)
    assert len(detect(stationary)) <= 2


def test_auto_on_continuous_errors_is_unit_free():
    errors = halfnormal_jump(3)
    alarms = detect(errors)
    assert alarms and CHANGE <= alarms[0] < CHANGE + 2_000
    assert detect(errors * 1e-4) == alarms == detect(errors * 1e4)  # ranks in the warm-up: same alarms


@pytest.mark.parametrize(("detector", "make"), [
    ("auto", lambda: bernoulli_jump(4, after=0.4)),
    ("auto", lambda: halfnormal_jump(5)),
    ("adwin", lambda: bernoulli_jump(4, after=0.4)),
    ("page_hinkley", lambda: halfnormal_jump(5)),
    ("hddm_a", lambda: bernoulli_jump(4, after=0.4)),
])
def test_resume_over_chunks_equals_one_pass(detector, make):
    errors = make()
    state, alarms = None, []
    for chunk in np.array_split(errors[:1_500], 2) + np.array_split(errors[1_500:], 3):  # a warm-up split in two
        state, found = resume(state, chunk, detector)
        alarms += found
    assert state.n_seen == len(errors)
    assert alarms == detect(errors, detector) and alarms


def test_state_round_trips_through_a_dict():
    errors = bernoulli_jump(6)
    state, first = resume(None, errors[:25_000])
    data = json.loads(json.dumps(state.to_dict()))
    restored = StreamState.from_dict(data)
    assert restored == state
    _, rest = resume(restored, errors[25_000:])
    assert first + rest == detect(errors)


def test_resume_refuses_another_detector_or_a_change_of_kind():
    state, _ = resume(None, bernoulli_jump(7)[:1_000])
    with pytest.raises(StreamInputError, match="'auto' detector, not 'adwin'"):
        resume(state, np.zeros(10), "adwin")
    with pytest.raises(StreamInputError, match="started as 0/1 errors"):
        resume(state, np.array([0.5, 1.0]))


def test_auto_is_river_adwin_with_tuned_parameters():
    from river.drift import ADWIN

    errors = bernoulli_jump(8, after=0.3).tolist() * 2
    river_det, expected = ADWIN(delta=AUTO_DELTA, clock=AUTO_CLOCK), []
    for i, x in enumerate(errors):
        river_det.update(x)
        if river_det.drift_detected:
            expected.append(i)
    assert len(expected) >= 2
    assert AutoDetector(binary=True).scan(np.array(errors)) == expected


def test_fast_river_adwin_loop_gives_river_alarms():
    from river.drift import ADWIN

    errors = np.concatenate([bernoulli_jump(9, after=0.5), bernoulli_jump(10, before=0.5, after=0.05)])
    river_det, expected = ADWIN(), []
    for i, x in enumerate(errors.tolist()):
        river_det.update(x)
        if river_det.drift_detected:
            expected.append(i)
    assert len(expected) >= 2 and scan(make_detector("adwin", binary=True), errors) == expected


def test_binary_detectors_refuse_continuous_errors_and_bad_values():
    with pytest.raises(StreamInputError, match="ddm reads 0/1 errors"):
        detect(np.array([0.0, 0.5, 1.0]), "ddm")
    with pytest.raises(StreamInputError, match=r"hddm_w reads errors in \[0, 1\]"):
        detect(np.array([0.0, 2.0]), "hddm_w")
    with pytest.raises(StreamInputError, match="1 NaN or infinite errors"):
        detect(np.array([0.0, np.nan]))
    with pytest.raises(StreamInputError, match="unknown detector"):
        detect(np.zeros(3), "cusum")
    assert detect(np.array([], dtype=np.int8)) == []


def test_prediction_signal_and_alarm_labels():
    scores = np.concatenate([np.random.default_rng(11).random(20_000) * 0.6, np.random.default_rng(12).random(5_000)])
    signal = prediction_stream_signal(scores)
    assert set(np.unique(signal)) == {0, 1}
    state, alarms = resume(None, signal[:15_000])
    _, alarms = resume(state, signal[15_000:])
    assert alarms and alarms[0] >= 20_000
    ids = [f"p{i}" for i in range(15_000, 25_000)]
    stamps = list(range(15_000, 25_000))
    rows = with_error_rates(label_alarms(alarms, 15_000, ids, stamps), signal[15_000:], 15_000, "adwin")
    local = alarms[0] - 15_000
    window = signal[15_000:]
    assert rows[0] == {"index": alarms[0], "prediction_id": f"p{alarms[0]}", "timestamp": alarms[0], "detector": "adwin",
                       "error_rate_before": window[max(0, local - 500):local].mean(),
                       "error_rate_after": window[local:local + 500].mean()}
    assert rows[0]["error_rate_after"] > rows[0]["error_rate_before"], "the signal rose where the detector fired"
    assert label_alarms([3], 10, ["a"], [1]) == [{"index": 3, "prediction_id": None, "timestamp": None}]


# ---------------------------------------------------------------- watchkeeper stream
@pytest.fixture(scope="module")
def stream_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    errors = bernoulli_jump(13, after=0.3)
    pq.write_table(pa.table({"error": errors, "abs_error": halfnormal_jump(14)[:len(errors)]}), folder / "e.parquet")
    (folder / "e.csv").write_text("id,error\n" + "\n".join(f"{i},{e}" for i, e in enumerate(errors)) + "\n")
    (folder / "nan.csv").write_text("error\n0\n1\nNaN\n")
    (folder / "text.csv").write_text("error\n0\nwrong\n")
    pq.write_table(pa.table({"error": [0.0, float("nan")]}), folder / "nan.parquet")
    return folder, errors


def run_stream(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["stream", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_stream_prints_detections_for_parquet_and_csv(stream_files, capsys):
    folder, errors = stream_files
    expected = {"detections": detect(errors), "detector": "auto"}
    assert expected["detections"]
    for name in ("e.parquet", "e.csv"):
        code, out, _ = run_stream(capsys, "--errors", str(folder / name), "--format", "json")
        assert code == 0 and json.loads(out) == expected


def test_stream_column_and_detector_options(stream_files, capsys):
    folder, _ = stream_files
    code, out, _ = run_stream(capsys, "--errors", str(folder / "e.parquet"), "--column", "abs_error",
                              "--detector", "page_hinkley")
    assert code == 0 and json.loads(out)["detector"] == "page_hinkley"
    code, out, _ = run_stream(capsys, "--errors", str(folder / "e.parquet"), "--column", "abs_error")
    assert json.loads(out)["detections"] == detect(pq.read_table(folder / "e.parquet")["abs_error"].to_numpy())


@pytest.mark.parametrize(("name", "column", "message"), [
    ("missing.parquet", "error", "no such file"),
    ("e.parquet", "loss", "no column 'loss' (columns: error, abs_error)"),
    ("e.csv", "nope", "no column 'nope' (columns: id, error)"),
    ("text.csv", "error", "column 'error' is not numeric (string)"),
    ("nan.csv", "error", "column 'error' has 1 missing values (first at row 2)"),
    ("nan.parquet", "error", "1 NaN or infinite errors (first at index 1)"),
])
def test_stream_bad_input_is_one_line_and_exit_2(stream_files, capsys, name, column, message):
    folder, _ = stream_files
    code, out, err = run_stream(capsys, "--errors", str(folder / name), "--column", column)
    assert code == 2 and out == ""
    assert err.startswith("watchkeeper stream: error: ") and message in err and err.count("\n") == 1


def test_stream_rejects_a_binary_detector_on_continuous_errors(stream_files, capsys):
    folder, _ = stream_files
    code, _, err = run_stream(capsys, "--errors", str(folder / "e.parquet"), "--column", "abs_error", "--detector", "ddm")
    assert code == 2 and "ddm reads 0/1 errors" in err


def test_a_tampered_or_unsigned_state_is_refused_before_anything_is_unpickled(monkeypatch):
    """Issue 9: river's detector state is pickled (its Rust core has no other form), so it is signed;
    a state that does not verify is refused in one line and pickle.loads never sees its bytes."""
    import base64
    import pickle

    state, _ = resume(None, bernoulli_jump(13)[:2_000])
    stored = state.to_dict()
    unpickled = []
    real_loads = pickle.loads
    monkeypatch.setattr(pickle, "loads", lambda data, *a, **k: unpickled.append(data) or real_loads(data, *a, **k))
    raw = base64.b64decode(stored["state"])
    forged = [
        stored | {"state": base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode()},  # one bit of the pickle
        stored | {"state": base64.b64encode(pickle.dumps(AutoDetector(binary=True))).decode()},  # never signed
        stored | {"state": base64.b64encode(raw[:12] + b"\0" * 32 + raw[44:]).decode()},  # signature zeroed
    ]
    for data in forged:
        with pytest.raises(StreamInputError, match="^stored 'auto' detector state refused: ") as error:
            resume(StreamState.from_dict(data), np.zeros(10))
        assert "\n" not in str(error.value)
    assert unpickled == []
    with pytest.raises(StreamInputError, match="^stored detector state is malformed"):
        StreamState.from_dict(stored | {"state": "not base64!"})
    old_key = os.environ["WATCHKEEPER_SIGNING_KEY"]
    monkeypatch.setenv("WATCHKEEPER_SIGNING_KEY", "another-deployment-" + "k" * 32)
    with pytest.raises(StreamInputError, match="unknown key"):
        resume(StreamState.from_dict(stored), np.zeros(10))
    assert unpickled == []
    monkeypatch.setenv("WATCHKEEPER_SIGNING_KEYS_PREVIOUS", old_key)  # a rotated key still verifies
    assert resume(StreamState.from_dict(stored), np.zeros(10))[0].n_seen == 2_010 and len(unpickled) == 1
