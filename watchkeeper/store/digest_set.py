"""The stream dedupe index in memory: which prediction-id digests are stored, at a cost per
lookup that does not grow with how many are.

The store keeps each batch's new SHA-256 digests appended in one row (`ingest_digests`,
watchkeeper.store.ingest_rows); a consumer reads them into a `DigestSet` and checks each batch
against it. A SQLite B-tree keyed by random digests dirtied pages all over itself at every commit,
and that cost grew with the index (docs/benchmarks.md); appending a batch's digests is one
sequential write, and the membership check is a few binary searches in sorted numpy arrays.

Memory holds each digest's first 16 bytes as two unsigned 64-bit integers: 16 bytes an id. Two
different ids share those 128 bits with probability about n^2 / 2^129 (below 10^-20 for a billion
ids), so the prefix is as good as the whole digest for telling ids apart; the store keeps the
whole digest anyway. The set is a few sorted runs (hi, lo): a new batch is a run of its own, and
runs of similar size are merged, so each digest is re-sorted O(log n) times in all, and a lookup
is one binary search per run (O(log n) runs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

DIGEST_BYTES = 32       # SHA-256, as stored
KEY_WORDS = 2           # 64-bit words of it kept in memory (128 bits)


def digests_of(ids: Sequence[str]) -> bytes:
    """The ids' SHA-256 digests, concatenated in the ids' order (what the store keeps: never an id)."""
    sha256 = hashlib.sha256
    return b"".join([sha256(str(i).encode("utf-8")).digest() for i in ids])


def keys_of(digests: bytes) -> np.ndarray:
    """(n, 2) uint64: each concatenated digest's first 128 bits, big-endian (a digest's byte order)."""
    words = np.frombuffer(digests, dtype=">u8").reshape(-1, DIGEST_BYTES // 8)
    return words[:, :KEY_WORDS].astype(np.uint64)


class DigestSet:
    """Digest keys, added a batch at a time; `contains` answers for a whole batch at once."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray, int]] = []   # (hi sorted, lo alongside, most equal his)

    def __len__(self) -> int:
        return sum(len(hi) for hi, _, _ in self._runs)

    def add(self, keys: np.ndarray) -> None:
        """Add (n, 2) keys (from `keys_of`)."""
        if not len(keys):
            return
        self._runs.append(_run(keys[:, 0], keys[:, 1]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (hi_a, lo_a, _), (hi_b, lo_b, _) = self._runs.pop(-2), self._runs.pop()
            self._runs.append(_run(np.concatenate([hi_a, hi_b]), np.concatenate([lo_a, lo_b])))

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """For each of (n, 2) keys, whether it is in the set (bool array, in the keys' order)."""
        order = np.argsort(keys[:, 0], kind="stable")    # sorted probes: a binary search walks warm memory
        hi, lo = keys[order, 0], keys[order, 1]
        found = np.zeros(len(keys), dtype=bool)
        for run_hi, run_lo, ties in self._runs:
            first = np.searchsorted(run_hi, hi)
            for step in range(ties):                      # every key of the run whose hi equals the probe's
                at = np.minimum(first + step, len(run_hi) - 1)
                found |= (run_hi[at] == hi) & (run_lo[at] == lo)
        result = np.empty_like(found)
        result[order] = found
        return result


def _run(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """A run sorted by hi (stable: a merge of two sorted runs is linear), with the largest number of
    keys sharing one hi (1 unless two digests share their first 64 bits)."""
    order = np.argsort(hi, kind="stable")
    hi, lo = hi[order], lo[order]
    starts = np.flatnonzero(np.diff(hi)) + 1
    ties = int(np.diff(np.concatenate([[0], starts, [len(hi)]])).max())
    return hi, lo, ties
