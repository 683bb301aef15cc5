"""Which shard of a fleet a model belongs to: a stable hash of its name.

A day of a large fleet is evaluated as several shards, each a run that one worker takes, so
N workers finish the day about N times faster. The assignment must be the same in every
process and on every day (a backfill of many days reuses it, and a model's runs stay easy to
find), and must not move when other models come and go, so it is a hash of the model's own
name, not its position in a list. Python's `hash()` is salted per process; BLAKE2 is not.

>>> shard_of("fraud-scorer", 4) == shard_of("fraud-scorer", 4)
True
>>> sorted(m for s in range(3) for m in shard_models(["a", "b", "c", "d"], s, 3))
['a', 'b', 'c', 'd']
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count); `Shard(0, 1)` is the whole fleet."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need count >= 1 and 0 <= index < count")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def label(self) -> str:
        """How runs and metadata name it: `2/8` (one-based index, so the last shard reads `8/8`)."""
        return f"{self.index + 1}/{self.count}"

    def holds(self, model: str) -> bool:
        return shard_of(model, self.count) == self.index


def shard_of(model: str, count: int) -> int:
    """The shard of `model` among `count`: stable across processes, days and fleet changes."""
    digest = hashlib.blake2b(model.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def shard_models(models: Iterable[str], index: int, count: int) -> list[str]:
    """The models of shard `index` of `count`, in their given order."""
    shard = Shard(index, count)
    return [m for m in models if shard.holds(m)]


def all_shards(count: int) -> list[Shard]:
    return [Shard(i, count) for i in range(count)]
