"""The evaluation loop keeps freed memory for the next model where glibc lets it (watchkeeper.memory)."""

import platform
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt only")

# Three 8 MB arrays a cycle, as a window's bootstrap allocates them; prints the page faults of a cycle.
CYCLES = """
import resource, sys
sys.path.insert(0, {root!r})
import numpy as np
from watchkeeper.memory import retain_freed_memory
{call}
def cycle():
    a = np.ones((200, 5000)); b = np.ones((200, 5000)); c = a + b
    return float(c[0, 0])
cycle(); cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_cycle(call: str) -> float:
    code = CYCLES.format(call=call, root=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    from watchkeeper.memory import retain_freed_memory

    assert retain_freed_memory() is True and retain_freed_memory() is True   # glibc took it; asked once
    assert faults_per_cycle("retain_freed_memory()") < 100 and faults_per_cycle("pass") > 1000
