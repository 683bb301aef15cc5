"""The ingestion loop: fetch a batch, check it, store it durably, feed the detectors, then ack.

One batch is one pass: a fetch of up to `batch` messages, one columnar check
(watchkeeper.ingest.events) and one commit (watchkeeper.ingest.writer: parts, dedupe index, dead
letters, live detector state and alerts in one transaction), one acknowledgement of every
message of the batch (stored, duplicate or dead-lettered alike: each has been dealt with for
good). The next batch is fetched while one is checked and committed (see `run`). A stop request
(SIGTERM, SIGINT) lets the batches in hand finish; a SIGKILL at any point loses nothing, since
nothing is acknowledged before it is stored.

References are read from the monitoring store when the consumer starts and again every
`refresh` seconds, so a model registered meanwhile is taken without a restart.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from watchkeeper.alerting.policy import Policy
from watchkeeper.inference_log import INFERENCE, LABELS
from watchkeeper.ingest.events import EventChecker, ModelSchema
from watchkeeper.ingest.live import LiveConcept
from watchkeeper.ingest.messages import Message
from watchkeeper.ingest.sources import Source
from watchkeeper.ingest.writer import LogWriter, Written
from watchkeeper.messages import one_line
from watchkeeper.reference import ModelReference
from watchkeeper.store import MonitoringStore

DEFAULT_BATCH = 20_000
DEFAULT_WAIT = 0.2        # seconds a fetch waits for its first message: the bound on an alert's batching delay
REFRESH_SECONDS = 60.0
PROGRESS_SECONDS = 10.0


@dataclass
class IngestStats:
    messages: int = 0
    predictions: int = 0
    labels: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    alarms: int = 0
    recovered_parts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "events_per_s": round(self.messages / self.seconds, 1) if self.seconds else 0.0}


class Consumer:
    """Consumes one source into the inference log under `root`, with the store's references."""

    def __init__(self, source: Source, store: MonitoringStore, root: str | Path, policy: Policy | None = None,
                 batch: int = DEFAULT_BATCH, wait: float = DEFAULT_WAIT, log: Callable[[str], None] | None = None) -> None:
        self.source, self.store, self.root, self.policy = source, store, Path(root), policy
        self.batch, self.wait = batch, wait
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.writer = LogWriter(root, store, source.name)
        self.stats = IngestStats()
        self._refreshed = -REFRESH_SECONDS
        self.checker = EventChecker({})
        self.live = LiveConcept(store, root, {}, policy)

    def run(self, stop: Callable[[], bool] = lambda: False, idle_exit: float | None = None) -> IngestStats:
        """Consume until `stop()` is true, or no message came for `idle_exit` seconds.

        Batch k is checked and committed on a thread of its own while this one fetches batch k+1,
        then acknowledges batch k once its commit is done. Commits run one at a time in arrival
        order, so each batch's dedupe claim sees the batches before it. The JSON reader of the
        checks, the commit's SQLite calls, Parquet writing and fsyncs release the GIL, so on two
        cores they run beside the fetch; the client is used from this thread alone (nats-py's
        event loop is not thread-safe). A batch fetched and not committed is simply not
        acknowledged (redelivered, as after a kill)."""
        self.stats.recovered_parts = self.writer.recover()
        self._refresh()
        self.log(f"ingest: consuming {self.source.name} into {self.root} ({len(self.checker.schemas)} models, "
                 f"{self.stats.recovered_parts} committed parts rolled forward)")
        started = last_message = last_progress = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-commit") as committer:
            committing = None
            while not stop():
                messages = self.source.fetch(self.batch, self.wait)
                if not messages:
                    self._stored(committing)     # nothing to overlap it with
                    committing = None
                    if idle_exit is not None and time.monotonic() - last_message >= idle_exit:
                        break
                    continue
                last_message = time.monotonic()
                if last_message - self._refreshed >= REFRESH_SECONDS:
                    self._stored(committing)     # the detectors' references change under no commit
                    committing = None
                    self._refresh()
                day = datetime.now(timezone.utc).date().isoformat()
                self._stored(committing)
                committing = committer.submit(self._check_and_commit, self.checker, messages, day), messages
                if last_message - last_progress >= PROGRESS_SECONDS:
                    last_progress = last_message
                    self.log(f"ingest {self.source.name}: {self.stats.messages} messages, "
                             f"{self.stats.predictions} predictions, {self.stats.labels} labels, "
                             f"{self.stats.duplicates} duplicates, {self.stats.dead_letters} dead letters")
            self._stored(committing)
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _check_and_commit(self, checker: EventChecker, messages: Sequence[Message], day: str) -> Written:
        """One batch's checks and commit, on the commit thread."""
        return self.writer.commit(checker.check(messages), day, self.live)

    def _stored(self, committing: tuple[Future, Sequence[Message]] | None) -> None:
        """Wait for the batch being committed (its error, if any, stops the consumer here), count
        it and acknowledge it."""
        if committing is None:
            return
        commit, messages = committing
        written = commit.result()
        self.source.ack(messages)
        s = self.stats
        s.messages += len(messages)
        s.predictions += written.stored[INFERENCE]
        s.labels += written.stored[LABELS]
        s.duplicates += written.duplicates
        s.dead_letters += written.dead
        s.batches += 1
        s.alarms = self.live.alarms

    def _refresh(self) -> None:
        """The references of the monitored models; one that cannot be decoded is left out, said once."""
        references = {}
        for name, stored in self.store.latest_profiles().items():
            try:
                references[name] = ModelReference.from_stored(stored)
            except ValueError as error:
                if name in self.checker.schemas or self._refreshed < 0:
                    self.log(f"ingest: events of {name} go to dead letters: {one_line(error, 300)}")
        self.checker = EventChecker({name: ModelSchema.of(r) for name, r in references.items()})
        self.live.references = references
        self._refreshed = time.monotonic()

