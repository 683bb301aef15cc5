"""Shared fixtures: the demo built once per session through the real `watchkeeper` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WATCHKEEPER = [sys.executable, "-m", "cli.main"]


def service_available(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip with a reason on a laptop without the server; CI (CI=true) must have it, so fail there."""
    if service_available(port):
        return
    message = f"{name} is not listening on 127.0.0.1:{port}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it; see .ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """(demo folder, JSON summary) of `watchkeeper demo --headless --format json`."""
    home = tmp_path_factory.mktemp("demo")
    done = subprocess.run([*WATCHKEEPER, "demo", "--headless", "--format", "json", "--dir", str(home)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return home, json.loads(done.stdout)
