"""Concept drift on streams of per-prediction errors, with river's detectors, resumable per model.

A stream is one number per prediction in arrival order: 0/1 errors of a classifier, absolute
errors of a regressor, or (when labels lag) a signal of the predictions themselves
(`prediction_stream_signal`). `detect` runs one detector over a whole array; `resume` continues a
model's detector window after window from a `StreamState` (the detector, pickled and signed with
watchkeeper.security.signing, and the number of elements it has seen), so history is never rescanned
and alarm indices stay global: the caller maps them back to prediction ids and timestamps
(`label_alarms`). A stored state whose signature does not verify is refused before anything is
unpickled: a row written into the monitoring store without the key cannot run code.

Detectors are river's at their defaults (`DETECTORS`), plus `auto` (`AutoDetector`): river's ADWIN
with a larger delta and a clock of 1 (`AUTO_DELTA`, `AUTO_CLOCK`). It reads 0/1 errors as they
are, and continuous errors as a unit-free score in [0, 1] fixed by the first `AUTO_WARM_UP` errors.
Why these values: docs/concept_drift.md, measured by bench/bench_stream.py.

`auto` drives the Rust core of river's ADWIN directly, without `import river.drift`, which pulls in
river.datasets and scikit-learn (about a second) and would dominate `watchkeeper stream`; river's
detectors come from river.drift, and an `adwin` one is scanned through its core too.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.concatenate([rng.random(20_000) < 0.1, rng.random(5_000) < 0.3]).astype(int)
>>> detect(errors)  # the error rate triples at 20,000
[20110]
"""

from __future__ import annotations

import base64
import pickle  # river's detectors only, unpickled after their signature verifies  # nosec B403
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.security.signing import SignatureError, sign, verify

__all__ = ["AUTO", "DETECTORS", "AutoDetector", "StreamInputError", "StreamState", "detect", "is_binary",
           "detector_name", "label_alarms", "make_detector", "prediction_stream_signal", "resume", "with_error_rates"]

AUTO = "auto"
ERRORS, PREDICTIONS = "errors", "predictions"  # the two concept-drift streams of a model (stored per day)
LIVE = "live"  # a stream's day fed by `watchkeeper ingest` as labels arrived (watchkeeper.ingest.live)
AUTO_DELTA = 0.01  # river's ADWIN default is 0.002: measured in docs/concept_drift.md
AUTO_CLOCK = 1  # river's default is 32, i.e. up to 31 elements of extra delay
STATE_PURPOSE = "concept.stream_state"  # what a stored state's signature is bound to
AUTO_WARM_UP = 1_000  # continuous errors: the first errors, which fix the reference distribution
AUTO_TAIL = 0.9  # continuous errors: the reference quantile above which an error counts as large
ADWIN_DEFAULTS = {"delta": 0.002, "clock": 32, "max_buckets": 5, "min_window_length": 5, "grace_period": 10}


def _drift():
    import river.drift  # ~1 s (river.datasets, scikit-learn): only for the detectors that need it

    return river.drift


DETECTORS: dict[str, Callable[[], Any]] = {
    "adwin": lambda: _drift().ADWIN(),
    "ddm": lambda: _drift().binary.DDM(),
    "eddm": lambda: _drift().binary.EDDM(),
    "hddm_a": lambda: _drift().binary.HDDMA(),
    "hddm_w": lambda: _drift().binary.HDDMW(),
    "page_hinkley": lambda: _drift().PageHinkley(),
    "kswin": lambda: _drift().KSWIN(seed=0),  # seeded so that a rerun gives the same alarms
}
ZERO_ONE = {"ddm", "eddm"}  # read 0/1 errors only
UNIT_INTERVAL = {"hddm_a", "hddm_w"}  # read values in [0, 1]


class StreamInputError(ValueError):
    """The stream cannot be read by the detector (one-line, user-facing message)."""


def validate_errors(errors: Sequence[float] | np.ndarray) -> np.ndarray:
    """A 1-D array of finite numbers, or a StreamInputError that says what is wrong and where."""
    values = np.asarray(errors)
    if values.ndim != 1:
        raise StreamInputError(f"expected one value per prediction (a 1-D array), got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.int8)
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise StreamInputError(f"errors must be numeric, got {values.dtype} values")
    bad = ~np.isfinite(values) if np.issubdtype(values.dtype, np.floating) else None
    if bad is not None and bad.any():
        first = int(np.argmax(bad))
        raise StreamInputError(f"{int(bad.sum())} NaN or infinite errors (first at index {first})")
    return values


def is_binary(errors: np.ndarray) -> bool:
    """True for 0/1 errors (a classifier's), False for continuous ones (a regressor's)."""
    return bool(((errors == 0) | (errors == 1)).all())


def make_detector(name: str, binary: bool) -> Any:
    """A fresh detector: river's at its defaults, or `auto` for this kind of stream."""
    if name == AUTO:
        return AutoDetector(binary=binary)
    if name not in DETECTORS:
        raise StreamInputError(f"unknown detector {name!r}; choose one of {', '.join([*DETECTORS, AUTO])}")
    return DETECTORS[name]()


def detect(errors: Sequence[float] | np.ndarray, detector: str = AUTO) -> list[int]:
    """0-based indices of the elements at which `detector` raised an alarm, in one pass."""
    values = validate_errors(errors)
    binary = is_binary(values)
    det = make_detector(detector, binary)
    _check_domain(detector, values, binary, det)
    return scan(det, values)


@dataclass
class StreamState:
    """A model's detector between two windows: the detector, pickled and signed, and elements seen so far.

    river's detectors (and the Rust core of its ADWIN) have no other complete form than pickle, so
    ``state`` is a blob signed for STATE_PURPOSE with the key in WATCHKEEPER_SIGNING_KEY; ``detector()``
    verifies it before unpickling and refuses (StreamInputError, one line) a state that was altered,
    signed with an unknown key, or never signed. An empty ``state`` holds no detector: the upgrade
    from the first release clears its unsigned pickles so, and the next window starts a fresh
    detector at ``n_seen``.
    """

    detector: str
    state: bytes
    n_seen: int

    @classmethod
    def of(cls, name: str, detector: Any, n_seen: int) -> StreamState:
        return cls(name, sign(pickle.dumps(detector), STATE_PURPOSE), n_seen)

    def restore(self) -> Any:
        """The detector, after its signature verifies; never unpickles unsigned bytes."""
        try:
            payload = verify(self.state, STATE_PURPOSE)
        except SignatureError as error:
            raise StreamInputError(f"stored {self.detector!r} detector state refused: {error}") from None
        return pickle.loads(payload)  # signed with this deployment's key, verified above  # nosec B301

    def to_dict(self) -> dict:
        return {"detector": self.detector, "state": base64.b64encode(self.state).decode("ascii"),
                "n_seen": self.n_seen}

    @classmethod
    def from_dict(cls, data: dict) -> StreamState:
        try:
            return cls(detector=str(data["detector"]), state=base64.b64decode(data["state"], validate=True),
                       n_seen=int(data["n_seen"]))
        except (KeyError, TypeError, ValueError) as error:
            raise StreamInputError(f"stored detector state is malformed: {' '.join(str(error).split())}") from None


def resume(state: StreamState | None, errors: Sequence[float] | np.ndarray,
           detector: str = AUTO) -> tuple[StreamState, list[int]]:
    """Feed the next window to a model's detector; alarm indices are global (offset by `n_seen`).

    With `state=None` a fresh detector starts (for `auto`, on the kind of stream this first window
    shows); otherwise `detector` must be the one the state was made with, and the state's signature
    must verify.
    """
    values = validate_errors(errors)
    binary = is_binary(values)
    if state is None:
        det, n_seen = make_detector(detector, binary), 0
    elif state.detector != detector:
        raise StreamInputError(f"the saved state is a {state.detector!r} detector, not {detector!r}")
    elif not state.state:
        det, n_seen = make_detector(detector, binary), state.n_seen
    else:
        det, n_seen = state.restore(), state.n_seen
    _check_domain(detector, values, binary, det)
    alarms = [n_seen + i for i in scan(det, values)]
    return StreamState.of(detector, det, n_seen + len(values)), alarms


def _check_domain(name: str, values: np.ndarray, binary: bool, det: Any) -> None:
    if name in ZERO_ONE and not binary:
        raise StreamInputError(f"{name} reads 0/1 errors; this stream has other values (use adwin or auto)")
    if name in UNIT_INTERVAL and values.size and (values.min() < 0 or values.max() > 1):
        raise StreamInputError(f"{name} reads errors in [0, 1]; this stream has values outside it")
    if isinstance(det, AutoDetector) and det.binary and not binary:
        raise StreamInputError("this stream started as 0/1 errors; its new window has other values")


def scan(det: Any, values: np.ndarray) -> list[int]:
    """Feed `values` to `det` in order; local indices of the alarms (negative: a replayed warm-up)."""
    if isinstance(det, AutoDetector):
        return det.scan(values)
    xs = values.tolist()
    if hasattr(det, "_helper") and type(det).__name__ == "ADWIN":
        return _scan_river_adwin(det, xs)
    alarms = []
    update = det.update
    for i, x in enumerate(xs):
        update(x)
        if det.drift_detected:
            alarms.append(i)
    return alarms


def _scan_river_adwin(det: Any, xs: list) -> list[int]:
    """river's ADWIN loop without its Python wrapper per element (same alarms, ~2.5x faster).

    ADWIN.update resets the detector before the update that follows an alarm; resetting right
    after the alarm instead leaves the same detector for the next element.
    """
    if det.drift_detected:
        det._reset()
    alarms = []
    update = det._helper.update
    for i, x in enumerate(xs):
        if update(x):
            alarms.append(i)
            det._reset()
            update = det._helper.update
    return alarms


def _adwin_core(**params: Any) -> Any:
    """The Rust core of river's ADWIN (what river.drift.ADWIN wraps), without importing river.drift."""
    try:
        from river._river_rust.drift import AdaptiveWindowing
    except ImportError:  # river moved its private core: take the public, slower-to-import road
        return _drift().ADWIN(**params)._helper
    return AdaptiveWindowing(**params)


class AutoDetector:
    """river's ADWIN (delta=AUTO_DELTA, clock=AUTO_CLOCK) over 0/1 errors or a score of continuous ones.

    delta = 0.01 and clock = 1 (river: 0.002 and 32) are the pair that meets both bars of issue 14 on
    bench/bench_stream.py: every change found with a median delay of at most 250 elements, and at
    most 0.15 false alarms per 100,000 stationary elements (docs/concept_drift.md).

    Continuous errors are buffered until `warm_up` of them have arrived; their sorted values become
    the reference, and each error x is then read as (rank + tail) / 2, where rank is the share of
    reference errors <= x and tail is 1 if x is above the reference's `tail_quantile`, else 0
    (`transform="rank"` or `"tail"` keeps one part). The score lies in [0, 1], where ADWIN's bound
    holds, whatever the errors' unit or tail; the warm-up is then replayed through ADWIN.
    Like river's detectors it has `update(x)` and `drift_detected` and resets after an alarm;
    `scan` is the fast path over a whole window.

    >>> det = AutoDetector(binary=True)
    >>> det.update(1)
    >>> det.drift_detected
    False

    References: Bifet & Gavalda (2007), Learning from time-changing data with adaptive windowing, SDM.
    """

    def __init__(self, binary: bool, delta: float = AUTO_DELTA, clock: int = AUTO_CLOCK,
                 warm_up: int = AUTO_WARM_UP, transform: str = "rank+tail", tail_quantile: float = AUTO_TAIL) -> None:
        self.binary = binary
        self.delta = delta
        self.clock = clock
        self.warm_up = warm_up
        self.transform = transform
        self.tail_quantile = tail_quantile
        self.reference_: np.ndarray | None = None  # continuous streams: the sorted warm-up
        self._warm_up_buffer: list[float] = []
        self._core = self._new_core()
        self._drift_detected = False

    def _new_core(self) -> Any:
        return _adwin_core(**{**ADWIN_DEFAULTS, "delta": self.delta, "clock": self.clock})

    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    def update(self, x: float) -> None:
        self.scan(np.array([x]))

    def scan(self, values: np.ndarray) -> list[int]:
        """Local indices of the alarms over `values`; a warm-up that completes here is replayed
        first, at the negative indices of its elements from earlier windows."""
        start = 0
        if not self.binary:
            values, start = self._scores(values)
        alarms = [start + i for i in self._loop(values.tolist())] if values.size else []
        self._drift_detected = bool(alarms) and alarms[-1] == start + values.size - 1
        return alarms

    def _scores(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Continuous errors mapped into [0, 1] by the warm-up; buffered until the warm-up is full."""
        start = 0
        if self.reference_ is None:
            taken = self.warm_up - len(self._warm_up_buffer)
            self._warm_up_buffer += values[:taken].tolist()
            if len(self._warm_up_buffer) < self.warm_up:
                return values[:0], 0
            start = -(self.warm_up - taken)
            reference = np.asarray(self._warm_up_buffer, dtype=float)
            self.reference_ = np.sort(reference)
            values, self._warm_up_buffer = np.concatenate([reference, values[taken:]]), []
        rank = np.searchsorted(self.reference_, values, side="right") / self.reference_.size
        tail = values > np.quantile(self.reference_, self.tail_quantile)
        return {"rank": rank, "tail": tail.astype(np.int8), "rank+tail": (rank + tail) / 2}[self.transform], start

    def _loop(self, xs: list) -> list[int]:
        alarms = []
        update = self._core.update
        for i, x in enumerate(xs):
            if update(x):
                alarms.append(i)
                self._core = self._new_core()
                update = self._core.update
        return alarms


def prediction_stream_signal(predictions: Sequence[float] | np.ndarray, threshold: float | None = 0.5) -> np.ndarray:
    """What to watch when labels lag: 1 where a classifier's score is >= `threshold` (its
    predicted-positive rate), or the predictions themselves (`threshold=None`, a regressor).
    Feed the result to `detect`/`resume` like errors; an alarm then means the model's output moved.

    >>> prediction_stream_signal([0.2, 0.7, 0.5]).tolist()
    [0, 1, 1]
    """
    values = validate_errors(predictions)
    return values if threshold is None else (values >= threshold).astype(np.int8)


ALARM_SPAN = 500   # elements on each side of an alarm whose error rate is reported


def detector_name(detector: str) -> str:
    """How an alarm names its detector: `auto` is ADWIN with Watchkeeper's settings."""
    return f"adwin (auto: delta {AUTO_DELTA}, clock {AUTO_CLOCK})" if detector == AUTO else detector


def with_error_rates(alarms: list[dict], values: Sequence[float], first_index: int, detector: str,
                     span: int = ALARM_SPAN) -> list[dict]:
    """Each labelled alarm with its detector and the mean error of up to `span` elements of this
    window before it and from it on: what a person reads to see the change the detector saw.
    An alarm outside the window (a replayed warm-up) gets None for both."""
    values = np.asarray(values, dtype=float)

    def rates(index: int) -> tuple[float | None, float | None]:
        local = index - first_index
        if not 0 <= local < len(values):
            return None, None
        before, after = values[max(0, local - span):local], values[local:local + span]
        return (float(before.mean()) if before.size else None), float(after.mean())

    return [{**alarm, "detector": detector_name(detector),
             **dict(zip(("error_rate_before", "error_rate_after"), rates(alarm["index"])))} for alarm in alarms]


def label_alarms(alarms: Sequence[int], first_index: int, prediction_ids: Sequence, timestamps: Sequence) -> list[dict]:
    """Alarms of a window (global indices from `resume`) as {index, prediction_id, timestamp};
    `first_index` is the global index of the window's first row (the state's n_seen before it).
    An alarm in an earlier window (a replayed warm-up) keeps its index, with None for the rest."""
    def row(a: int) -> dict:
        local = a - first_index
        inside = 0 <= local < len(prediction_ids)
        return {"index": int(a), "prediction_id": prediction_ids[local] if inside else None,
                "timestamp": timestamps[local] if inside else None}
    return [row(a) for a in alarms]
