"""What a source hands over: messages, one at a time (`Message`) or a batch kept as columns (`Batch`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, overload


class Message(NamedTuple):
    """One message of a stream: its id there (unique within the source), its bytes, and what
    the source needs to acknowledge it. (A tuple: a million of them are made per million events.)"""

    id: str
    data: bytes
    handle: object = None


class Batch(Sequence[Message]):
    """A batch as a source read it, two columns: the messages' ids (bytes, as the broker sent
    them) and their payloads. Building a `Message` per entry cost the fetching thread 0.7 us an
    event (Redis); the columnar checks read `payloads` whole and the source acknowledges `ids`
    whole, so a `Message` is made only for an event that goes the event-by-event way."""

    __slots__ = ("ids", "payloads")

    def __init__(self, ids: list[bytes], payloads: list[bytes]) -> None:
        self.ids, self.payloads = ids, payloads

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> Batch: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Batch(self.ids[index], self.payloads[index])
        return Message(self.ids[index].decode(), self.payloads[index])


def payloads(messages: Sequence[Message]) -> list[bytes]:
    """The messages' payloads in order, without a pass over messages when they are a `Batch`."""
    return messages.payloads if isinstance(messages, Batch) else [m.data for m in messages]
