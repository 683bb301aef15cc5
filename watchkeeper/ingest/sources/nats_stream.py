"""NATS JetStream: a durable pull consumer with explicit acknowledgement (nats-py).

Every process that opens the same durable shares it: JetStream hands each message to one of
them, and a message not acknowledged within `ack_wait` seconds (its consumer died) is handed out
again. The stream is created on first use when it does not exist (subjects: `subject`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from watchkeeper.ingest.messages import Message
from watchkeeper.ingest.sources import SourceError, describe, seconds

DEFAULT_DURABLE = "watchkeeper"
MAX_ACK_PENDING = 200_000   # messages out unacknowledged at once, across the group


class NatsSource:
    def __init__(self, parts, stream: str, query: dict) -> None:
        import nats

        if not stream:
            raise SourceError("nats:// source needs a stream: nats://host:4222/STREAM?subject=...")
        self.name = describe(parts, stream)
        self.stream, self.subject = stream, query.get("subject", f"{stream.lower()}.events")
        self.durable = query.get("durable", DEFAULT_DURABLE)
        ack_wait = seconds(query, "ack_wait", 30.0)
        server = f"nats://{parts.netloc}"
        self.loop = asyncio.new_event_loop()
        try:
            self.nc = self._run(nats.connect(server, connect_timeout=5, allow_reconnect=True, max_reconnect_attempts=5))
        except Exception as error:   # nats-py raises several kinds; one line is what the user needs
            raise SourceError(f"cannot connect to {self.name}: {type(error).__name__}: {error}") from None
        self.js = self.nc.jetstream()
        self._run(ensure_stream(self.js, self.stream, self.subject))
        from nats.js.api import AckPolicy, ConsumerConfig

        config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait,
                                max_ack_pending=MAX_ACK_PENDING)
        self.sub = self._run(self.js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream,
                                                    config=config))

    def _run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        import nats.errors

        try:
            got = self._run(self.sub.fetch(max_messages, timeout=timeout))
        except (nats.errors.TimeoutError, asyncio.TimeoutError):   # nats-py raises either when nothing came
            return []
        return [Message(str(m.metadata.sequence.stream), m.data, m) for m in got]

    def ack(self, messages: Sequence[Message]) -> None:
        async def ack_all() -> None:
            for m in messages:
                await m.handle.ack()
            await self.nc.flush()
        self._run(ack_all())

    def close(self) -> None:
        """Close the connection (every stored message was acknowledged; what was fetched and not
        stored is redelivered after ack_wait), then the loop."""
        try:
            self._run(self.nc.close())
        finally:
            self.loop.close()


async def ensure_stream(js, stream: str, subject: str) -> None:
    """The stream, created with `subject` when it does not exist yet."""
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[subject])
