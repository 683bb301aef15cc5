"""Where events come from: one interface over NATS JetStream, Redis Streams and Kafka.

A `Source` fetches a batch of messages and acknowledges a batch after it is stored; nothing is
acknowledged before (watchkeeper.ingest.consumer). Each runs as a member of a consumer group, so
several consumers share a stream and each message goes to one of them; a message fetched by a
consumer that dies unacknowledged is delivered again (to it when it restarts, or to another).

    nats://HOST:PORT/STREAM?subject=SUBJ&durable=NAME&ack_wait=30     durable pull consumer, explicit ack
    redis://HOST:PORT/DB?stream=KEY&group=NAME&consumer=ME&claim_idle=30   consumer group, XACK
    kafka://HOST:PORT/TOPIC?group=NAME                                 consumer group, offsets committed

`open_source(url)` picks the client by the URL's scheme; its name (`describe`) carries no
credentials, so it can be logged and kept with dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from watchkeeper.ingest.messages import Message

SCHEMES = ("nats", "redis", "rediss", "kafka")


class SourceError(ValueError):
    """A source URL that cannot be used, or a broker that refused us (one line)."""


class Source(Protocol):
    name: str      # the stream, without credentials: kept with each dead letter

    def fetch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Up to `max_messages`, waiting at most `timeout` seconds for the first; [] when none came."""

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge stored messages; they are not delivered again."""

    def close(self) -> None: ...


def open_source(url: str, consumer: str | None = None) -> Source:
    """The source a URL names; `consumer` names this member of the group (default: from the URL)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise SourceError(f"--source must start with nats://, redis:// or kafka:// (got {parts.scheme or 'no'} scheme)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    path = parts.path.strip("/")
    if parts.scheme == "nats":
        from watchkeeper.ingest.sources.nats_stream import NatsSource
        return NatsSource(parts, path, query)
    if parts.scheme == "kafka":
        from watchkeeper.ingest.sources.kafka_topic import KafkaSource
        return KafkaSource(parts, path, query, consumer)
    from watchkeeper.ingest.sources.redis_stream import RedisSource
    return RedisSource(url.split("?")[0], path, query, consumer)


def describe(parts, path: str) -> str:
    """scheme://host:port/path, without user or password."""
    return f"{parts.scheme}://{parts.hostname or 'localhost'}{f':{parts.port}' if parts.port else ''}/{path}"


def seconds(query: dict, key: str, default: float) -> float:
    try:
        value = float(query.get(key, default))
    except ValueError:
        raise SourceError(f"{key} must be a number of seconds") from None
    if value <= 0:
        raise SourceError(f"{key} must be positive")
    return value
