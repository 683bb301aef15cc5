"""Concept drift benchmark: river's detectors at their defaults vs `auto`, and `watchkeeper stream` speed.

    .venv/bin/python bench/bench_stream.py [--quick] [--sweep] [--no-quality] [--no-throughput]

(1) Detection quality. Each stream has a known change point t0 (20,000 elements after the start):
  bernoulli      0/1 errors, 10% -> 20% error rate (abrupt)
  sea, agrawal,  0/1 errors of a fixed model (scikit-learn DecisionTreeClassifier, depth 8, trained on
  hyperplane     5,000 samples of the first concept and never updated: a deployed model whose world
                 changes) on river's SEA (variant 0 -> 1, 10% label noise), Agrawal (function
                 0 -> 2, 5% perturbation) and Hyperplane (10 features, 5% noise; the second concept
                 is another random hyperplane) generators. Abrupt: the first concept up to t0, then the
                 second (river 0.26's ConceptDriftStream overflows math.exp with width=1, so the abrupt
                 switch is a plain concatenation, which is what width=1 means); gradual:
                 ConceptDriftStream(position=t0, width=2,000 for SEA, 1,000 for Agrawal).
  continuous     absolute errors: |N(0, 1)| -> |N(0, 1.25)|, lognormal(0, 1) x1 -> x1.25, and a fixed
                 DecisionTreeRegressor on river's FriedmanDrift (global abrupt 'gra'; gradual 'gsg'
                 with a 2,000-element transition).
  Delay = first alarm at or after t0 (gradual: after t0 - width/2, measured from t0), averaged over
  seeds; "missed" = no alarm after t0 in the stream. The summary pools every change stream (median
  delay, changes missed) and every stationary element (false alarms per 100,000) per detector, and
  checks issue 14's bars for `auto`: every change found, median delay <= 250, <= 0.15 false alarms
  per 100,000 stationary elements; river's ADWIN at its defaults is in the same table. False alarms are counted on stationary streams:
  Bernoulli at 5/10/20/30/50% error, SEA and Agrawal errors of the fixed model, and continuous
  errors (half-normal, exponential, lognormal, |t3|, Friedman) at three scales (x0.01, x1, x100).
  KSWIN runs a scipy KS test per element (~4,000 elements/s) over a 100-element window, so it reads
  the first 10 change streams of each scenario from t0 - 1,000 to t0 + 5,000 only (no alarm by then:
  missed) and the first 50,000 elements of each stationary group; auto is compared with it on those.
(2) Throughput: 10,000,000 Bernoulli(0.1) errors in a Parquet file (int8 column "error"). The bare
  loop is river's ADWIN fed the same array in this process after reading it (`for x in xs:
  det.update(x); if det.drift_detected: ...`); `watchkeeper stream --detector auto` is timed as a
  whole process (start-up, imports, Parquet read, loop, JSON). Three interleaved rounds, medians.
  --quick: 8 seeds (abrupt) / 4 (gradual), 10x fewer stationary elements, 1,000,000 for throughput;
  a smoke run, not the bars' measure: with 8 seeds the median delay lands in the gap between the fast
  scenarios (Agrawal, Friedman, Bernoulli) and the slow ones (SEA, lognormal, Hyperplane).
  --sweep: also evaluate the grid of `auto` candidates (delta x clock; continuous transforms) from
  which the defaults in watchkeeper/concept.py were picked.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchkeeper.concept import AUTO, DETECTORS, AutoDetector, make_detector, scan  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = 20_000
TRAIN = 5_000
KSWIN_STREAMS, KSWIN_BEFORE, KSWIN_AFTER, KSWIN_STATIONARY = 10, 1_000, 5_000, 50_000
BINARY_DETECTORS = [*DETECTORS, AUTO]
CONTINUOUS_DETECTORS = ["adwin", "page_hinkley", "kswin", AUTO]  # ddm/eddm read 0/1, hddm_* [0, 1]


@dataclass
class Stream:
    errors: np.ndarray
    t0: int | None = None  # None: stationary
    start: int | None = None  # gradual: delays count from alarms after this index


@dataclass
class Scenario:
    name: str
    streams: list[Stream]
    kind: str  # "abrupt" | "gradual" | "stationary"


# ---------------------------------------------------------------- streams with a known change point
def bernoulli(seed: int, p0: float, p1: float, n1: int = 20_000) -> Stream:
    rng = np.random.default_rng(seed)
    return Stream(np.concatenate([rng.random(T0) < p0, rng.random(n1) < p1]).astype(np.int8), T0)


def _features(iterator, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [(list(x.values()), y) for x, y in itertools.islice(iterator, n)]
    return np.array([r[0] for r in rows], dtype=float), np.array([r[1] for r in rows], dtype=float)


def _drifting(first, second, n: int, width: int, seed: int):
    from river.datasets import synth

    if width <= 1:  # abrupt: what ConceptDriftStream(width=1) means, without its math.exp overflow
        return itertools.chain(itertools.islice(iter(first), TRAIN + T0), iter(second))
    return iter(synth.ConceptDriftStream(first, second, position=TRAIN + T0, width=width, seed=seed))


def model_errors(generator: str, seed: int, n: int, width: int = 1, drift: bool = True) -> np.ndarray:
    """0/1 (classifiers) or absolute (regressor) errors of a model fit on TRAIN samples of concept 1."""
    from river.datasets import synth
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if generator == "friedman":
        position = (TRAIN + T0, 10**9) if drift else (10**9, 10**9 + 1)
        kind = "gra" if width <= 1 else "gsg"
        stream = iter(synth.FriedmanDrift(drift_type=kind, position=position, transition_window=width, seed=seed))
        model = DecisionTreeRegressor(max_depth=8, random_state=0)
    else:
        make = {"sea": lambda k, s: synth.SEA(variant=k, noise=0.1, seed=s),
                "agrawal": lambda k, s: synth.Agrawal(classification_function=2 * k, perturbation=0.05, seed=s),
                "hyperplane": lambda k, s: synth.Hyperplane(seed=s + 1_000 * k, n_features=10, noise_percentage=0.05)
                }[generator]
        first = make(0, seed)
        stream = _drifting(first, make(1, seed + 7), n, width, seed) if drift else iter(first)
        model = DecisionTreeClassifier(max_depth=8, random_state=0)
    x, y = _features(stream, TRAIN + n)
    model.fit(x[:TRAIN], y[:TRAIN])
    predicted = model.predict(x[TRAIN:])
    if generator == "friedman":
        return np.abs(predicted - y[TRAIN:])
    return (predicted != y[TRAIN:]).astype(np.int8)


def continuous(seed: int, family: str, n: int, ratio: float = 1.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draw = {"halfnormal": lambda k: np.abs(rng.normal(size=k)), "exponential": lambda k: rng.exponential(1.0, k),
            "lognormal": lambda k: rng.lognormal(0.0, 1.0, k), "abs_t3": lambda k: np.abs(rng.standard_t(3, k))}[family]
    if ratio == 1.0:
        return scale * draw(n)
    return scale * np.concatenate([draw(T0), ratio * draw(n - T0)])


def binary_scenarios(quick: bool) -> list[Scenario]:
    seeds, gradual_seeds = (8, 4) if quick else (30, 20)
    stationary = 200_000 if quick else 2_000_000
    models = 50_000 if quick else 300_000
    return [
        Scenario("bernoulli", [bernoulli(s, 0.1, 0.2) for s in range(seeds)], "abrupt"),
        Scenario("sea", [Stream(model_errors("sea", s, 2 * T0), T0) for s in range(seeds)], "abrupt"),
        Scenario("agrawal", [Stream(model_errors("agrawal", s, T0 + 5_000), T0) for s in range(seeds)], "abrupt"),
        Scenario("sea gradual", [Stream(model_errors("sea", s, 2 * T0, 2_000), T0, T0 - 1_000)
                                 for s in range(gradual_seeds)], "gradual"),
        Scenario("agrawal gradual", [Stream(model_errors("agrawal", s, T0 + 5_000, 1_000), T0, T0 - 500)
                                     for s in range(gradual_seeds)], "gradual"),
        Scenario("hyperplane", [Stream(model_errors("hyperplane", s, T0 + 5_000), T0) for s in range(seeds)], "abrupt"),
        Scenario("hyperplane gradual", [Stream(model_errors("hyperplane", s, T0 + 5_000, 1_000), T0, T0 - 500)
                                        for s in range(gradual_seeds)], "gradual"),
        Scenario("stationary bernoulli", [Stream((np.random.default_rng(100 + i).random(stationary) < p).astype(np.int8))
                                          for i, p in enumerate([0.05, 0.1, 0.2, 0.3, 0.5])], "stationary"),
        Scenario("stationary sea", [Stream(model_errors("sea", 200 + s, models // 2, drift=False)) for s in range(2)],
                 "stationary"),
        Scenario("stationary agrawal", [Stream(model_errors("agrawal", 300 + s, models // 2, drift=False))
                                        for s in range(2)], "stationary"),
        Scenario("stationary hyperplane", [Stream(model_errors("hyperplane", 600 + s, models // 2, drift=False))
                                           for s in range(2)], "stationary"),
    ]


def continuous_scenarios(quick: bool) -> list[Scenario]:
    seeds, gradual_seeds = (8, 4) if quick else (30, 20)
    stationary = 100_000 if quick else 500_000
    families = ["halfnormal", "exponential", "lognormal", "abs_t3"]
    friedman = model_errors("friedman", 400, stationary, drift=False)
    return [
        Scenario("halfnormal x1.25", [Stream(continuous(s, "halfnormal", 2 * T0, 1.25), T0) for s in range(seeds)], "abrupt"),
        Scenario("lognormal x1.25", [Stream(continuous(s, "lognormal", 2 * T0, 1.25), T0) for s in range(seeds)], "abrupt"),
        Scenario("friedman", [Stream(model_errors("friedman", s, T0 + 5_000), T0) for s in range(seeds)], "abrupt"),
        Scenario("friedman gradual", [Stream(model_errors("friedman", s, 2 * T0, 2_000), T0, T0 - 1_000)
                                      for s in range(gradual_seeds)], "gradual"),
        Scenario("stationary continuous",
                 [Stream(continuous(500 + i, f, stationary, scale=c)) for i, (f, c) in
                  enumerate(itertools.product(families, [0.01, 1.0, 100.0]))]
                 + [Stream(c * friedman) for c in (0.01, 1.0, 100.0)], "stationary"),
    ]


# ---------------------------------------------------------------- evaluation
Runner = Callable[[np.ndarray], list[int]]


def named(name: str) -> Runner:
    return lambda errors: scan(make_detector(name, binary=bool(np.isin(errors, (0, 1)).all())), errors)


def auto_variant(**params) -> Runner:
    return lambda errors: AutoDetector(binary=bool(np.isin(errors, (0, 1)).all()), **params).scan(errors)


def raw_adwin(**params) -> Runner:
    """ADWIN on the raw values (what `auto` would be without its score of continuous errors)."""
    return lambda errors: AutoDetector(binary=True, **params).scan(errors)


def evaluate(runner: Runner, scenario: Scenario, kswin: bool = False) -> dict:
    """Per-stream delays (None: missed) for change scenarios, false alarms for stationary ones."""
    if scenario.kind == "stationary":
        alarms = elements = worst = 0
        for stream in scenario.streams:
            errors = stream.errors[:KSWIN_STATIONARY // len(scenario.streams)] if kswin else stream.errors
            found = len(runner(errors))
            alarms, elements = alarms + found, elements + len(errors)
            worst = max(worst, found / len(errors) * 1e5)
        return {"fa": alarms / elements * 1e5, "worst": worst}
    delays = []
    for stream in scenario.streams[:KSWIN_STREAMS] if kswin else scenario.streams:
        first = stream.t0 - KSWIN_BEFORE if kswin else 0
        errors = stream.errors[first:stream.t0 + KSWIN_AFTER] if kswin else stream.errors
        start = stream.start if stream.start is not None else stream.t0
        after = [first + a for a in runner(errors) if first + a >= start]
        delays.append(after[0] - stream.t0 if after else None)
    return {"delays": delays}


def cell(result: dict) -> str:
    if "fa" in result:
        return f"{result['fa']:.2f} (worst {result['worst']:.1f})"
    found = [d for d in result["delays"] if d is not None]
    missed = len(result["delays"]) - len(found)
    return (f"{np.mean(found):.0f}" if found else "-") + (f" ({missed}/{len(result['delays'])} missed)" if missed else "")


def quality_table(title: str, runners: dict[str, Runner], scenarios: list[Scenario]) -> dict[str, list[dict]]:
    print(f"\n### {title}\n")
    head = ["detector"] + [("delay " if s.kind != "stationary" else "FA/100k ") + s.name for s in scenarios] + ["seconds"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    results = {}
    for name, runner in runners.items():
        started = time.perf_counter()
        results[name] = [evaluate(runner, s, kswin=name == "kswin") for s in scenarios]
        cells = [cell(r) for r in results[name]]
        print(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - started:.0f} |", flush=True)
    return results


def check_bars(results: dict[str, list[dict]], scenarios: list[Scenario], candidate: str = AUTO,
               qualified: bool = False) -> list[str]:
    """The issue's bars for `candidate`: on every abrupt scenario it misses nothing and its mean delay
    is no worse than the best default that found every change (compared on the same streams); on
    stationary streams at most 1 false alarm per 100k elements (pooled over the group's streams).
    `qualified`: compare only with defaults that also keep within 1 false alarm per 100k elements."""
    lines = []
    stationary = [j for j, s in enumerate(scenarios) if s.kind == "stationary"]
    rivals = [n for n in DETECTORS if n in results
              and (not qualified or all(results[n][j]["fa"] <= 1.0 for j in stationary))]
    for j, scenario in enumerate(scenarios):
        mine = results[candidate][j]
        if scenario.kind == "stationary":
            ok = mine["fa"] <= 1.0
            lines.append(f"{scenario.name}: {mine['fa']:.2f} false alarms per 100k (worst stream "
                         f"{mine['worst']:.1f}) {'PASS' if ok else 'FAIL'}")
        elif scenario.kind == "abrupt":
            lines.append(f"{scenario.name}: " + _compare(results, j, candidate, rivals))
    return lines


def _compare(results: dict[str, list[dict]], j: int, candidate: str, rivals: list[str]) -> str:
    mine = results[candidate][j]["delays"]
    missed = sum(a is None for a in mine)
    complete = [n for n in rivals if None not in results[n][j]["delays"]]
    if not complete:
        return f"no default {'within the false-alarm bar ' if rivals != list(DETECTORS) else ''}found every " \
               f"change, missed {missed} {'PASS' if missed == 0 else 'FAIL'}"
    best = min(complete, key=lambda n: float(np.mean(results[n][j]["delays"])))
    theirs = results[best][j]["delays"]
    pairs = [(t, a) for t, a in zip(theirs, mine) if a is not None]
    delay, their_delay = float(np.mean([a for _, a in pairs])), float(np.mean(theirs))
    gain = np.array([t - a for t, a in pairs], dtype=float)
    ok = missed == 0 and delay <= their_delay
    return f"{delay:.0f} vs best default {best} {their_delay:.0f} (same {len(theirs)} streams; paired gain " \
           f"{gain.mean():.1f} +/- {gain.std(ddof=1) / np.sqrt(gain.size):.1f} s.e.), missed {missed} {'PASS' if ok else 'FAIL'}"


def print_checks(results: dict[str, list[dict]], scenarios: list[Scenario], candidates: list[str],
                 brief: bool = False, qualified: bool = False) -> None:
    print()
    for candidate in candidates:
        lines = check_bars(results, scenarios, candidate, qualified)
        failed = [line.split(":")[0] for line in lines if not line.endswith("PASS")]
        verdict = f"FAIL ({', '.join(failed)})" if failed else "PASS"
        print(f"- {candidate}: {verdict}" if brief else f"{candidate}: {verdict}\n" + "\n".join(f"- {x}" for x in lines))


def summary(tables: list[tuple[dict[str, list[dict]], list[Scenario]]], names: list[str]) -> None:
    """Pooled over every scenario of every table: median delay and misses over all change streams,
    false alarms per 100,000 over all stationary elements; issue 14's bars for auto."""
    print("\n### Summary over every stream\n")
    print("| detector | change streams | missed | median delay | median delay, abrupt only | found within 250 "
          "| stationary elements | false alarms per 100k |")
    print("|---|---|---|---|---|---|---|---|")
    figures = {}
    for name in names:
        delays, abrupt, alarms, elements = [], [], 0.0, 0
        for results, scenarios in tables:
            if name not in results:
                continue
            for result, scenario in zip(results[name], scenarios):
                if scenario.kind == "stationary":
                    n = sum(len(st.errors) for st in scenario.streams)
                    alarms, elements = alarms + result["fa"] * n / 1e5, elements + n
                else:
                    delays += result["delays"]
                    abrupt += result["delays"] if scenario.kind == "abrupt" else []
        found = [d for d in delays if d is not None]
        figures[name] = (len(delays) - len(found), float(np.median(found)) if found else float("nan"),
                         alarms / max(elements, 1) * 1e5)
        # the median falls between fast and slow scenarios: the share within the bar shows its margin
        within = sum(d <= 250 for d in found) / max(len(delays), 1)
        abrupt_median = float(np.median([d for d in abrupt if d is not None] or [np.nan]))
        print(f"| {name} | {len(delays)} | {figures[name][0]} | {figures[name][1]:.0f} | {abrupt_median:.0f} | "
              f"{within:.0%} | {elements:,} | {figures[name][2]:.3f} |")
    missed, median, fa = figures[AUTO]
    ok = missed == 0 and median <= 250 and fa <= 0.15
    print(f"\nauto: {missed} missed, median delay {median:.0f} (bar 250), {fa:.3f} false alarms per 100k (bar 0.15): "
          f"{'PASS' if ok else 'FAIL'}; river's ADWIN at its defaults: {figures['adwin'][0]} missed, median delay "
          f"{figures['adwin'][1]:.0f}, {figures['adwin'][2]:.3f} false alarms per 100k")


def sweep_runners() -> tuple[dict[str, Runner], dict[str, Runner]]:
    binary = {f"adwin delta={d} clock={c}": auto_variant(delta=d, clock=c)
              for d, c in itertools.product([0.002, 0.005, 0.01, 0.02], [1, 4, 32])}
    cont = {f"adwin on raw errors delta={d} clock=4": raw_adwin(delta=d) for d in (0.002, 0.02)}
    cont |= {f"adwin on {t} delta={d} clock=4": auto_variant(transform=t, delta=d)
             for t, d in itertools.product(["tail", "rank", "rank+tail"], [0.005, 0.01, 0.02])}
    return binary, cont


# ---------------------------------------------------------------- throughput
def bare_adwin_loop(xs: list) -> int:
    from river.drift import ADWIN

    det, n = ADWIN(), 0
    for x in xs:
        det.update(x)
        if det.drift_detected:
            n += 1
    return n


def throughput(n: int, rounds: int = 3) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"\n### Throughput: {n:,} Bernoulli(0.1) errors in Parquet\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "errors.parquet"
        errors = (np.random.default_rng(0).random(n) < 0.1).astype(np.int8)
        pq.write_table(pa.table({"error": errors}), path)
        command = [str(ROOT / ".venv" / "bin" / "watchkeeper"), "stream", "--errors", str(path), "--detector", AUTO]
        bare, whole, adwin = [], [], []
        for _ in range(rounds):
            xs = pq.read_table(path, columns=["error"]).column(0).to_numpy().tolist()
            started = time.perf_counter()
            bare_adwin_loop(xs)
            bare.append(time.perf_counter() - started)
            del xs
            whole.append(_timed(command))
            adwin.append(_timed(command[:-1] + ["adwin"]))
    b, w, a = (statistics.median(t) for t in (bare, whole, adwin))
    print("| measurement | seconds (median of %d) | updates/s |" % rounds)
    print("|---|---|---|")
    print(f"| bare loop: river ADWIN over the array, in-process after reading | {b:.2f} | {n / b / 1e6:.2f} M |")
    print(f"| `watchkeeper stream --detector auto`, whole process | {w:.2f} | {n / w / 1e6:.2f} M |")
    print(f"| `watchkeeper stream --detector adwin`, whole process | {a:.2f} | {n / a / 1e6:.2f} M |")
    print(f"\nratio whole process (auto) / bare loop = **{w / b:.2f}** (bar: <= 1.5)")


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    parser.add_argument("--sweep", action="store_true", help="also evaluate the grid of auto candidates")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.no_quality:
        binary, cont = binary_scenarios(args.quick), continuous_scenarios(args.quick)
        print(f"streams generated in {time.perf_counter() - started:.0f} s")
        defaults = quality_table("0/1 errors (classifiers)", {n: named(n) for n in BINARY_DETECTORS}, binary)
        print_checks(defaults, binary, [AUTO])
        continuous_defaults = quality_table("Absolute errors (regressors)", {n: named(n) for n in CONTINUOUS_DETECTORS}, cont)
        print_checks(continuous_defaults, cont, [AUTO], qualified=True)
        summary([(defaults, binary), (continuous_defaults, cont)], ["adwin", AUTO])
        if args.sweep:
            sweep_binary, sweep_cont = sweep_runners()
            found_binary = quality_table("Sweep: auto candidates on 0/1 errors", sweep_binary, binary)
            print_checks(defaults | found_binary, binary, list(found_binary), brief=True)
            found = quality_table("Sweep: auto candidates on absolute errors", sweep_cont, cont)
            print_checks(continuous_defaults | found, cont, list(found), brief=True, qualified=True)
            print("\n0/1 candidates pooled over the 0/1 streams (the continuous ones as auto reads them):")
            for name in found_binary:
                summary([({AUTO: found_binary[name], "adwin": defaults["adwin"]}, binary)], ["adwin", AUTO])
                print(f"(that was {name})")
    if not args.no_throughput:
        throughput(1_000_000 if args.quick else 10_000_000)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
