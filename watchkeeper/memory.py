"""Freed memory kept for reuse by the process that evaluates windows (glibc's malloc, Linux).

A window's statistics allocate and free a few arrays of several megabytes per model (200
bootstrap resamples or drawn label sets by 5,000 rows of float64 are 8 MB each). glibc's malloc
gives freed blocks at the top of its heap back to the kernel once more than twice its mmap
threshold is free, and serves blocks above that threshold from fresh mappings, so the next model's
arrays arrive as new pages that the kernel must fault in and zero: on the fleet benchmark that was
about a seventh of the engine's CPU time. `retain_freed_memory` raises both thresholds so those
blocks stay in the heap and are reused; a process then keeps up to `trim_threshold` of freed memory
(64 MB by default) instead of returning it. Elsewhere (another libc or system) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters (malloc.h)


@cache
def retain_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Keep freed blocks below `mmap_threshold` in the heap, trimming it only past `trim_threshold`
    of free memory; once per process. True when glibc took both settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):   # no C library to ask, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
