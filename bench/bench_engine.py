"""The engine's CPU per model-window on a synthetic fleet, this tree against a baseline checkout.

    python bench/bench_engine.py --models 20 --baseline /path/to/main-checkout [--rounds 2]

Each round evaluates one window of every model of a fleet (bench/fleet.py: 20 features, 5,000
rows) with `WindowMonitor.evaluate`, in a fresh process per tree (its own imports), on a fresh
SQLite store, and counts the process's CPU seconds during the evaluation only (fleet generation
and imports excluded). CPU time, not wall time: on a machine shared with other work it is what
the load inflates least. Trees alternate within a round, so both see the same load. Prints the
median CPU seconds per model of each tree and this tree's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time, uuid
from pathlib import Path
sys.path.insert(0, os.getcwd())
os.environ.update(WATCHKEEPER_LOG_LEVEL="WARNING", OPENBLAS_NUM_THREADS="1")
os.environ.setdefault("WATCHKEEPER_SIGNING_KEY", uuid.uuid4().hex * 2)
from bench.fleet import DAY, build_fleet
from watchkeeper.alerting.policy import load_policy
from watchkeeper.config import load_config
from watchkeeper.inference_log import InferenceLog
from watchkeeper.monitor import WindowMonitor
from watchkeeper.store import MonitoringStore

data, models, work = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
url = f"sqlite:///{work / 'monitoring.db'}"
build_fleet(data, models, url)
monitor = WindowMonitor(MonitoringStore(url), InferenceLog(str(data)), load_config("deploy/monitoring.yaml"),
                        load_policy("deploy/alerting.demo.yaml"))
started = time.process_time()
outcomes = monitor.evaluate(DAY)
print(json.dumps({"cpu": time.process_time() - started, "failed": sum(o.failed for o in outcomes)}))
"""


def engine_cpu(tree: Path, data: Path, models: int) -> float:
    """CPU seconds per model of one evaluation of the fleet by the engine in `tree`."""
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as work:
        out = subprocess.run([sys.executable, "-c", CHILD, str(data), str(models), work], cwd=tree,
                             capture_output=True, text=True, check=True).stdout
    facts = json.loads(out.strip().splitlines()[-1])
    if facts["failed"]:
        raise SystemExit(f"{tree}: {facts['failed']} models failed")
    return facts["cpu"] / models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare with")
    args = parser.parse_args()
    data = Path(tempfile.gettempdir()) / f"watchkeeper-engine-fleet-{args.models}"
    data.mkdir(exist_ok=True)
    trees = {"baseline": args.baseline.resolve(), "this tree": ROOT}
    cpu = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            cpu[name].append(engine_cpu(tree, data, args.models))
    median = {name: statistics.median(values) for name, values in cpu.items()}
    print(json.dumps({"models": args.models, "rounds": args.rounds,
                      "cpu_seconds_per_model": {k: round(v, 4) for k, v in median.items()},
                      "ratio": round(median["this tree"] / median["baseline"], 3)}))


if __name__ == "__main__":
    main()
