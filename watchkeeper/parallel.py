"""Column work spread over the machine's cores, with results identical to doing it in order.

Sorting, searching and Parquet decoding release the GIL, so a small pool of threads over columns
(or over contiguous groups of block rows) uses every core without copying data to other processes.
Each task owns its columns: results do not depend on the number of threads or on their timing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = max(1, min(4, os.cpu_count() or 1))  # beyond a few threads, memory bandwidth is the limit
_pool: ThreadPoolExecutor | None = None


def _shared() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="watchkeeper-columns")
    return _pool


def parallel_map(function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(function, items)`` on the shared pool, results in order (in the caller's thread when
    there is a single core or a single item); the first exception is re-raised here."""
    items = list(items)
    if WORKERS == 1 or len(items) < 2:
        return map(function, items)
    return _shared().map(function, items)


def prefetch(function: Callable[[], R]) -> Callable[[], R]:
    """Start ``function`` on the shared pool now (in the caller's thread, later, on a single core);
    calling the result waits for its value or re-raises its exception. For reading the next group of
    columns while this one is profiled: ``function`` must not wait on the pool itself."""
    if WORKERS == 1:
        return function
    return _shared().submit(function).result


def spans(n: int, parts: int = WORKERS) -> list[slice]:
    """``n`` positions cut into at most ``parts`` contiguous, near-equal, non-empty slices."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of an iterator, each next one produced on the pool while the caller works on the
    current one (one at a time, in order): decoding a file overlaps with folding what it gave."""
    end = object()
    pending = prefetch(lambda: next(items, end))
    while (item := pending()) is not end:
        pending = prefetch(lambda: next(items, end))
        yield item
