"""The production profile started for real on this machine, for the fleet benchmark and its test.

Every process of deploy/production/compose.yaml, as local processes: a code server, the
webserver, the daemon and W Celery workers, on the loopback PostgreSQL (Dagster's instance and
the monitoring store, each a fresh database) and a Celery broker (Redis, a database index of
its own so that other users of the server never take these tasks). The instance and workspace
files are the shipped ones, deploy/production/dagster.yaml and workspace.yaml: only the
environment differs. Shard runs are queued through the webserver, exactly as
`watchkeeper fleet submit` does, and the daemon launches them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ROOT / "deploy" / "production"
BIN = Path(sys.executable).parent
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
READY_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(name: str) -> str:
    """An empty PostgreSQL database on the loopback server; returns its SQLAlchemy URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{POSTGRES}/{name}"


def drop_database(name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@dataclass
class Profile:
    """A running production profile: where things are, and the processes it started."""

    home: Path                      # DAGSTER_HOME
    env: dict[str, str]
    webserver_port: int
    store_url: str
    workers: list[subprocess.Popen] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def worker_cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the worker processes and their pool children:
        unlike wall time, this does not grow with the load other users put on the machine."""
        return sum(_cpu_seconds(pid) for pid in _descendants([w.pid for w in self.workers]))

    @contextmanager
    def instance(self):
        """The profile's Dagster instance, opened here (its storage URL comes from the environment)."""
        import dagster as dg

        saved = os.environ.get("DAGSTER_POSTGRES_URL")
        os.environ["DAGSTER_POSTGRES_URL"] = self.env["DAGSTER_POSTGRES_URL"]
        try:
            with dg.DagsterInstance.from_config(str(self.home)) as instance:
                yield instance
        finally:
            if saved is None:
                os.environ.pop("DAGSTER_POSTGRES_URL")
            else:
                os.environ["DAGSTER_POSTGRES_URL"] = saved


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _descendants(roots: list[int]) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(roots), list(roots)
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in found]
        found.update(children)
        frontier = children
    return sorted(found)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    # utime + stime, and cutime + cstime of children it has reaped (a step run in a subprocess)
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child in its own process group, so stopping it stops what it spawned (run workers)."""
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _wait_for_port(port: int, process: subprocess.Popen, logs: Path) -> None:
    """Until the code server listens: it opens its port only once the definitions are imported, so
    the webserver and the daemon started after it load the location at their first try (the
    daemon would otherwise keep the unreachable location for up to a minute before retrying)."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the code server exited early; see {logs / 'code-server.log'}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the code server did not listen on port {port} in {READY_SECONDS} s; see {logs}")


def _wait_until_loaded(port: int, processes: list[subprocess.Popen], logs: Path) -> None:
    """Until the webserver answers and serves the code location's definitions (GraphQL workspaceOrError).

    An entry's loadStatus is LOADED as soon as the webserver has tried the code server, even when
    the server was not up yet: the entry then holds the error (`PythonError`, "Could not reach user
    code server") and jobs submitted are refused as unknown. The webserver retries by itself once the
    code server answers, so wait for a `RepositoryLocation`, not for the status.
    """
    import requests

    query = ("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
             "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    deadline, last_error = time.monotonic() + READY_SECONDS, "no answer from the webserver"
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"a production process exited early; see the logs in {logs}")
        try:
            answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=5).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            loaded = [e["locationOrLoadError"] or {} for e in entries]
            if entries and all(e.get("__typename") == "RepositoryLocation" for e in loaded):
                return
            last_error = next((e.get("message", "").strip() for e in loaded if e.get("message")), "still loading")
        except (requests.RequestException, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the webserver did not load the code location in {READY_SECONDS} s ({last_error[:300]}); "
                       f"see {logs}")


@contextmanager
def production_profile(workdir: Path, data_dir: Path, workers: int, broker: str, store_url: str | None = None,
                       shards: int = 1):
    """Start the production profile over the drop folder `data_dir`; stop everything on exit.

    `broker` is the Celery broker and result backend (e.g. redis://127.0.0.1:6379/11). The monitoring
    store is `store_url`, or a fresh PostgreSQL database. Yields a `Profile`.
    """
    tag = uuid.uuid4().hex[:8]
    names = [f"wk_fleet_{tag}_dagster"] + ([] if store_url else [f"wk_fleet_{tag}_store"])
    home, logs = workdir / "dagster_home", workdir / "logs"
    home.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(PRODUCTION / "dagster.yaml", home / "dagster.yaml")
    dagster_url = fresh_database(names[0])
    store_url = store_url or fresh_database(names[1])
    code_port, web_port = free_port(), free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "DAGSTER_HOME": str(home),
           "DAGSTER_DISABLE_TELEMETRY": "1", "DAGSTER_POSTGRES_URL": dagster_url,
           "DAGSTER_CODE_SERVER_HOST": "127.0.0.1", "DAGSTER_CODE_SERVER_PORT": str(code_port),
           "WATCHKEEPER_EXECUTOR": "celery", "WATCHKEEPER_CELERY_BROKER": broker,
           "WATCHKEEPER_CELERY_BACKEND": broker, "WATCHKEEPER_SHARDS": str(shards),
           "WATCHKEEPER_STORE_URL": store_url, "WATCHKEEPER_DATA_DIR": str(data_dir),
           "WATCHKEEPER_MLFLOW_URI": f"sqlite:///{workdir / 'mlflow.db'}",
           "WATCHKEEPER_ALERT_POLICY": str(ROOT / "deploy" / "alerting.demo.yaml"),
           "WATCHKEEPER_SIGNING_KEY": os.environ.get("WATCHKEEPER_SIGNING_KEY") or uuid.uuid4().hex * 2,
           "WATCHKEEPER_LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    profile = Profile(home, env, web_port, store_url)
    workspace = PRODUCTION / "workspace.yaml"
    try:
        subprocess.run([str(BIN / "watchkeeper"), "db", "upgrade", "--store-url", store_url], env=env, check=True,
                       capture_output=True)
        code_server = _start([str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1",
                              "-p", str(code_port), "-m", "definitions", "-d", str(ROOT)], env, logs / "code-server.log")
        profile.processes.append(code_server)
        for i in range(workers):
            profile.workers.append(_start(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(PRODUCTION / "celery.yaml"), "--name", f"watchkeeper-{tag}-{i}", "--",
                 "--concurrency", "1"], env, logs / f"worker-{i}.log"))
        _wait_for_port(code_port, code_server, logs)
        profile.processes.append(_start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                         "-w", str(workspace)], env, logs / "webserver.log"))
        profile.processes.append(_start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                                        env, logs / "daemon.log"))
        _wait_until_loaded(web_port, profile.processes + profile.workers, logs)
        yield profile
    finally:
        for process in profile.processes + profile.workers:
            _stop(process)
        for name in names:
            drop_database(name)
        _clear_celery_keys(broker)


def _clear_celery_keys(broker: str) -> None:
    """Task results and queue bindings Celery left in a Redis broker (nothing else is touched)."""
    if not broker.startswith("redis://"):
        return
    import redis

    client = redis.Redis.from_url(broker)
    for pattern in ("celery-task-meta-*", "_kombu.binding*", "dagster", "unacked*"):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
