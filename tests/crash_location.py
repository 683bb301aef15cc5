"""The code location with a crash planted, for tests/test_crash.py: imported by the step process
the multiprocess executor starts, it SIGKILLs that process once at the point named by
WATCHKEEPER_CRASH_AT, for the model WATCHKEEPER_CRASH_MODEL (WATCHKEEPER_CRASH_MARKER records that
it happened, so the retried step runs through).

Points, in the order a model's evaluation reaches them: `window` (its window kept and recorded),
`drift` (its drift report stored), `metrics` (its metrics stored), `queue` (inside the verdict's
transaction, after the verdict and the first outbox row were written, before the commit).
"""

import functools
import os
import signal
from pathlib import Path

from definitions import defs
from watchkeeper.alerting.outbox import Outbox
from watchkeeper.store import MonitoringStore

POINTS = {"window": (MonitoringStore, "put_window"), "drift": (MonitoringStore, "put_drift"),
          "metrics": (MonitoringStore, "put_metrics"), "queue": (Outbox, "_insert")}


def _crash_after(method, model: str, marker: Path):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        subject = args[1].model if method.__name__ == "_insert" else args[0]   # _insert(conn, alert, ...)
        if subject == model and not marker.exists():
            marker.write_text(f"killed after {method.__name__} for {model}")
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper


if os.environ.get("WATCHKEEPER_CRASH_AT"):
    owner, name = POINTS[os.environ["WATCHKEEPER_CRASH_AT"]]
    setattr(owner, name, _crash_after(getattr(owner, name), os.environ["WATCHKEEPER_CRASH_MODEL"],
                                      Path(os.environ["WATCHKEEPER_CRASH_MARKER"])))


def evaluate_window_job():
    return defs.resolve_job_def("evaluate_window")
