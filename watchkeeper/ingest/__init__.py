"""Stream ingestion: inference events and late labels from NATS JetStream, Redis Streams or
Kafka into the inference log, checked, stored once per prediction id, acknowledged after.

- `sources`: one interface over the three brokers (consumer groups, explicit acknowledgement).
- `messages`: what a source hands over: a `Message`, or a `Batch` kept as columns (ids, payloads).
- `events`: a batch of JSON events checked against each model's stored reference.
- `writer`: a batch made durable in the inference log's day folders, deduplicated by prediction id.
- `live`: labels fed to the models' concept-drift detectors as they arrive, alarms to the outbox.
- `consumer`: the loop that ties them together (`watchkeeper ingest`).

See docs/streams.md.
"""

from watchkeeper.ingest.consumer import Consumer, IngestStats
from watchkeeper.ingest.sources import SourceError, open_source

__all__ = ["Consumer", "IngestStats", "SourceError", "open_source"]
