"""Scrape cost of the Prometheus exporter for a large fleet: 1,000 models x 50 features.

Fills a monitoring store through `MonitoringStore`'s writers with several windows per
model (drift reports from the real drift engine, five metrics with intervals, a verdict,
some alerts), serves it with the exporter's collector on a loopback port, and times
HTTP scrapes of /metrics the way Prometheus makes them.

    .venv/bin/python bench/bench_exporter.py [--models 1000] [--features 50] [--windows 3]
                                             [--scrapes 5] [--store-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from watchkeeper.alerting.policy import load_policy
from watchkeeper.alerting.record import AlertRecord
from watchkeeper.drift import evaluate_drift
from watchkeeper.metrics_export import StoreCollector, serve
from watchkeeper.profile import fit_profile
from watchkeeper.problems import ProblemLog, fingerprint
from watchkeeper.store import MonitoringStore

ROOT = Path(__file__).resolve().parent.parent

FIRST_WINDOW = date(2026, 11, 1)
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
STATUSES = ("ok", "drifted", "degraded", "no_data")


def drift_reports(n_features: int, rng: np.random.Generator, variants: int = 4) -> list[dict]:
    """Real drift reports (four fifths numeric, one fifth categorical), shifted by varying amounts."""
    n_categorical = n_features // 5
    n_numeric = n_features - n_categorical

    def frame(n: int, shift: float) -> pd.DataFrame:
        numeric = {f"num_{i}": rng.normal(shift * (i % 3), 1.0, n) for i in range(n_numeric)}
        categorical = {f"cat_{i}": rng.choice(list("abcdefgh"), n, p=_shares(shift)) for i in range(n_categorical)}
        return pd.DataFrame({**numeric, **categorical})

    profile = fit_profile(frame(2000, 0.0))
    return [evaluate_drift(profile, frame(500, 0.1 * v)).to_dict() for v in range(variants)]


def _shares(shift: float) -> np.ndarray:
    weights = np.exp(-shift * np.arange(8))
    return weights / weights.sum()


def fill_store(url: str, n_models: int, n_windows: int, n_features: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    reports = drift_reports(n_features, rng)
    store = MonitoringStore(url)
    problems, policy = ProblemLog(store), load_policy(ROOT / "deploy" / "alerting.demo.yaml")
    for m in range(n_models):
        model = f"model_{m:04d}"
        for w in range(n_windows):
            window = (FIRST_WINDOW + timedelta(days=w)).isoformat()
            report = reports[(m + w) % len(reports)]
            store.put_drift(model, window, "1", report)
            values = [{"name": name, "value": v, "lower": v - 0.05, "upper": min(v + 0.05, 1.0)}
                      for name, v in zip(METRICS, rng.uniform(0.7, 0.95, len(METRICS)))]
            store.put_metrics(model, window, "1", values, n_labelled=int(rng.integers(0, 500)), n_predictions=500)
            store.put_health(model, window, "1", STATUSES[(m + w) % len(STATUSES)], [])
        if m % 10 == 0:
            kind = "data_drift"
            problems.record(model, "1", window, [AlertRecord(fingerprint(model, "1", kind), model, "1", window,
                                                             "warning", kind, kind, "")], policy)


def time_scrapes(url: str, scrapes: int, max_features: int) -> tuple[list[float], list[float], int, int]:
    """Wall-clock and CPU seconds per scrape (the first one also opens the store's
    connections), response bytes and sample lines, over a real HTTP server on loopback.
    Server and client share this process, so its CPU time is the scrape's whole cost,
    which other jobs on the machine cannot inflate."""
    server, thread = serve([StoreCollector(url, max_features_per_model=max_features)], "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        wall, cpu, body = [], [], b""
        for _ in range(scrapes):
            start, start_cpu = time.perf_counter(), time.process_time()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
                body = response.read()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return wall, cpu, len(body), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--windows", type=int, default=3, help="windows per model (only the newest is exported)")
    parser.add_argument("--scrapes", type=int, default=6, help="scrapes to time, the first included (at least 2)")
    parser.add_argument("--store-url", help="an existing store to scrape instead of filling a temporary SQLite one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{Path(tmp) / 'monitoring.db'}"
        if not args.store_url:
            start = time.perf_counter()
            fill_store(url, args.models, args.windows, args.features)
            print(f"filled {args.models} models x {args.windows} windows x {args.features} features "
                  f"in {time.perf_counter() - start:.1f} s")
        wall, cpu, size, samples = time_scrapes(url, args.scrapes, max_features=args.features)
    print(f"scrape of /metrics ({samples} samples, {size / 1e6:.1f} MB): first {wall[0]:.3f} s; then median "
          f"{statistics.median(wall[1:]):.3f} s, max {max(wall[1:]):.3f} s over {len(wall) - 1} scrapes; "
          f"CPU per scrape median {statistics.median(cpu):.3f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
