"""Which executor runs the steps: chosen by the environment, so one image serves every profile.

The embedded profile runs each step in the run's own processes (Dagster's default executor).
The production profile sets WATCHKEEPER_EXECUTOR=celery: every step goes to the Celery broker
named by WATCHKEEPER_CELERY_BROKER (RabbitMQ or Redis) and a worker started with
`dagster-celery worker start -A dagster_celery.app -y deploy/production/celery.yaml` takes it. The broker
URL is referenced by variable name, never copied into the job's snapshot, since it may carry a
password. Dagster fixes a job's executor when the code location loads, so this is read then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_VARIABLE = "WATCHKEEPER_EXECUTOR"
BROKER_VARIABLE = "WATCHKEEPER_CELERY_BROKER"
BACKEND_VARIABLE = "WATCHKEEPER_CELERY_BACKEND"
DEFAULT, CELERY = "default", "celery"
# As in deploy/production/celery.yaml: a worker takes one step at a time (a shard is minutes of
# work), and a task is acknowledged when done, so a worker killed mid-step leaves it to another.
CELERY_SETTINGS = {"worker_prefetch_multiplier": 1, "task_acks_late": True}


def executor_from_environment(environ: Mapping[str, str] = os.environ) -> dg.ExecutorDefinition | None:
    """None (Dagster's default) unless WATCHKEEPER_EXECUTOR asks for Celery; ValueError on anything else."""
    name = environ.get(EXECUTOR_VARIABLE, "").strip() or DEFAULT
    if name == DEFAULT:
        return None
    if name != CELERY:
        raise ValueError(f"{EXECUTOR_VARIABLE}={name[:40]!r}: expected {DEFAULT!r} or {CELERY!r}")
    missing = [v for v in (BROKER_VARIABLE, BACKEND_VARIABLE) if not environ.get(v)]
    if missing:
        raise ValueError(f"{EXECUTOR_VARIABLE}=celery needs {' and '.join(missing)} "
                         "(e.g. pyamqp://guest@127.0.0.1:5672// and rpc://)")
    from dagster_celery import celery_executor

    return celery_executor.configured({"broker": {"env": BROKER_VARIABLE}, "backend": {"env": BACKEND_VARIABLE},
                                       "config_source": CELERY_SETTINGS}, name=CELERY)
