"""Producers of inference events for NATS JetStream and Redis Streams, batched, for the ingestion
bench (bench/bench_ingest.py) and tests (tests/test_ingest_streams.py).

Each producer publishes bytes as they come (malformed ones too: that is what tests need) and
can drop its stream. Publishing is batched (Redis pipelines; NATS asynchronous publishes with
their acknowledgements awaited per window), so that the producer is not what a run measures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_SERVER = "nats://127.0.0.1:4222"
WINDOW = 2_000   # messages in flight per publish window


def prediction(model: str, pid: str, timestamp: str, predicted: int, features: dict) -> bytes:
    """A binary classifier's prediction event (its probabilities agree with the predicted class)."""
    high = 0.8 if predicted == 1 else 0.2
    return json.dumps({"type": "prediction", "model": model, "prediction_id": pid, "timestamp": timestamp,
                       "prediction": predicted, "features": features,
                       "proba": {"0": round(1 - high, 3), "1": high}}).encode()


def label(model: str, pid: str, value: int) -> bytes:
    return json.dumps({"type": "label", "model": model, "prediction_id": pid, "label": value}).encode()


class RedisProducer:
    def __init__(self, stream: str) -> None:
        import redis

        self.stream, self.client = stream, redis.Redis.from_url(REDIS_URL)

    @property
    def source(self) -> str:
        return f"{REDIS_URL}?stream={self.stream}&claim_idle=5"

    def publish(self, events: Iterable[bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i, event in enumerate(events, 1):
            pipe.xadd(self.stream, {"data": event})
            if i % WINDOW == 0:
                pipe.execute()
        pipe.execute()

    def drop(self) -> None:
        self.client.delete(self.stream)
        self.client.close()


class NatsProducer:
    def __init__(self, stream: str) -> None:
        self.stream, self.subject = stream, f"{stream.lower()}.events"
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(_connect())
        self.js = self.nc.jetstream()
        from watchkeeper.ingest.sources.nats_stream import ensure_stream

        self.loop.run_until_complete(ensure_stream(self.js, self.stream, self.subject))

    @property
    def source(self) -> str:
        return f"{NATS_SERVER}/{self.stream}?subject={self.subject}&ack_wait=5"

    def publish(self, events: Iterable[bytes]) -> None:
        async def send(window: Sequence[bytes]) -> None:
            for e in window:
                await self.js.publish_async(self.subject, e)
            await self.js.publish_async_completed()

        window: list[bytes] = []
        for event in events:
            window.append(event)
            if len(window) == WINDOW:
                self.loop.run_until_complete(send(window))
                window = []
        if window:
            self.loop.run_until_complete(send(window))

    def drop(self) -> None:
        try:
            self.loop.run_until_complete(self.nc.jetstream(timeout=60).delete_stream(self.stream))
        finally:
            self.loop.run_until_complete(self.nc.close())
            self.loop.close()


async def _connect():
    import nats

    return await nats.connect(NATS_SERVER, connect_timeout=5)


def producer(broker: str, stream: str) -> RedisProducer | NatsProducer:
    return RedisProducer(stream) if broker == "redis" else NatsProducer(stream)
