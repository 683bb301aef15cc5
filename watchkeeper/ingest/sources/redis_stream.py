"""Redis Streams: a consumer group, read with XREADGROUP and acknowledged with XACK (redis-py).

Consumers of one group share the stream: Redis hands each entry to one of them. An entry read
but not acknowledged stays pending for the consumer that read it: a consumer restarted under its
name reads its own pending entries first; entries pending on a consumer that does not come back
are claimed (XAUTOCLAIM) by a live one once idle for `claim_idle` seconds.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from operator import itemgetter
from urllib.parse import urlsplit

from watchkeeper.ingest.messages import Batch, Message
from watchkeeper.ingest.sources import SourceError, describe, seconds

DEFAULT_GROUP = "watchkeeper"
CLAIM_EVERY = 5.0   # seconds between looks for entries abandoned by a dead consumer
READ_BYTES = 1 << 22  # bytes per socket read: a batch in a few reads, each a GIL hand-off with the commit thread, not one per 64 KiB
DATA = b"data"        # the field holding an entry's event (the one field producers set)
_first, _second = itemgetter(0), itemgetter(1)


class RedisSource:
    def __init__(self, url: str, path: str, query: dict, consumer: str | None) -> None:
        import redis

        self.stream = query.get("stream")
        if not self.stream:
            raise SourceError("redis:// source needs ?stream=KEY")
        self.name = describe(urlsplit(url), f"{path or '0'}/{self.stream}")
        self.group = query.get("group", DEFAULT_GROUP)
        self.consumer = consumer or query.get("consumer") or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = int(seconds(query, "claim_idle", 30.0) * 1000)
        self.client = redis.Redis.from_url(url, socket_timeout=30, socket_read_size=READ_BYTES)
        # XREADGROUP's reply as hiredis parsed it (lists, in C), not redis-py's entries: its callback
        # builds a dict per entry in Python, which cost the ingest more than its checks did.
        self.client.set_response_callback("XREADGROUP", _as_read)
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise SourceError(f"{self.name}: {error}") from None
        except redis.RedisError as error:
            raise SourceError(f"cannot connect to {self.name}: {type(error).__name__}") from None
        self._own_pending = True        # after a restart, first what this consumer read and did not ack
        self._next_claim = 0.0

    def fetch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        if self._own_pending:
            got = self._read("0", max_messages, None)
            if got:
                return got
            self._own_pending = False
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + CLAIM_EVERY
            _, claimed, *_ = self.client.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                                    "0-0", count=max_messages)
            if claimed:
                return [_message(i, fields) for i, fields in claimed if fields]
        return self._read(">", max_messages, max(1, int(timeout * 1000)))

    def _read(self, start: str, count: int, block_ms: int | None) -> Batch:
        found = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block_ms)
        return _batch(found[0][1] if found else [])

    def ack(self, messages: Sequence[Message]) -> None:
        if messages:
            ids = messages.ids if isinstance(messages, Batch) else [m.id for m in messages]
            self.client.xack(self.stream, self.group, *ids)

    def close(self) -> None:
        self.client.close()


def _message(entry_id: bytes, fields: dict) -> Message:
    """An entry's event is its `data` field (the one field producers set)."""
    return Message(entry_id.decode(), fields.get(DATA, b""), None)


def _batch(entries: list) -> Batch:
    """XREADGROUP's raw entries ([entry id, [field, value, ...] or None]) as columns. When every
    entry's first field is `data` (what producers send), the columns are taken by C loops
    (`map`), no Python per entry; otherwise entry by entry, leaving out deleted entries (None, or no field)."""
    fields = list(map(_second, entries))
    if all(fields) and set(map(_first, fields)) == {DATA}:
        return Batch(list(map(_first, entries)), list(map(_second, fields)))
    kept = [(i, f) for i, f in entries if f]
    return Batch([i for i, _ in kept], [f[1] if f[0] == DATA else _data(f) for _, f in kept])


def _data(fields: list) -> bytes:
    """The `data` field of an entry's raw [field, value, ...] list whose first field is another."""
    return dict(zip(fields[::2], fields[1::2])).get(DATA, b"")


def _as_read(reply, **options):
    """XREADGROUP's raw reply: [[stream, [[entry id, [field, value, ...] or None], ...]]], or None."""
    return reply
