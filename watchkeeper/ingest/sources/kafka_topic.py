"""Kafka: a consumer group with offsets committed after the batch is stored (confluent-kafka).

Auto-commit is off; `ack` commits, synchronously, the offset after the last stored message of
each partition. Kafka acknowledges by position, not per message: a crash before the commit
makes the group read the batch again, which the dedupe index absorbs. The consumers of one
group share the topic's partitions (a group scales to as many consumers as partitions).
No Kafka broker runs on the development machines: this adapter is tested for its shape
(configuration, message ids, offsets to commit), not against a broker.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchkeeper.ingest.messages import Message
from watchkeeper.ingest.sources import SourceError, describe

DEFAULT_GROUP = "watchkeeper"


def consumer_config(parts, query: dict, consumer: str | None) -> dict:
    """The confluent-kafka configuration a kafka:// URL means."""
    config = {"bootstrap.servers": f"{parts.hostname or 'localhost'}:{parts.port or 9092}",
              "group.id": query.get("group", DEFAULT_GROUP), "enable.auto.commit": False,
              "auto.offset.reset": query.get("offset_reset", "earliest"), "enable.partition.eof": False}
    if consumer:
        config["group.instance.id"] = consumer   # static membership: a restart keeps its partitions
    return config


def offsets_to_commit(messages: Sequence[Message]) -> list[tuple[str, int, int]]:
    """(topic, partition, next offset) for each partition of a stored batch: Kafka's ack."""
    highest: dict[tuple[str, int], int] = {}
    for m in messages:
        topic, partition, offset = m.id.rsplit(":", 2)
        key = (topic, int(partition))
        highest[key] = max(highest.get(key, -1), int(offset))
    return [(topic, partition, offset + 1) for (topic, partition), offset in sorted(highest.items())]


class KafkaSource:
    def __init__(self, parts, topic: str, query: dict, consumer: str | None) -> None:
        try:
            from confluent_kafka import Consumer
        except ImportError:
            raise SourceError("kafka:// needs confluent-kafka: pip install 'watchkeeper[kafka]'") from None
        if not topic:
            raise SourceError("kafka:// source needs a topic: kafka://host:9092/TOPIC?group=...")
        self.name = describe(parts, topic)
        self.consumer = Consumer(consumer_config(parts, query, consumer))
        self.consumer.subscribe([topic])

    def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        got = self.consumer.consume(num_messages=max_messages, timeout=timeout)
        errors = [m.error() for m in got if m.error() is not None]
        if errors:
            raise SourceError(f"{self.name}: {errors[0]}")
        return [Message(f"{m.topic()}:{m.partition()}:{m.offset()}", m.value() or b"", None) for m in got]

    def ack(self, messages: Sequence[Message]) -> None:
        from confluent_kafka import TopicPartition

        offsets = [TopicPartition(t, p, o) for t, p, o in offsets_to_commit(messages)]
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self.consumer.close()
