"""What the inference sensor has seen of the drop folder: its cursor.

Per stream, a digest of each recent day's files (which files, their modification times and
sizes) and the newest modification time seen. A recent day is new or changed when its digest
differs: a file added, rewritten, renamed in with an old time, or removed. An older day is
new when one of its files is newer than anything seen (a backfill). Keeping digests for
recent days only bounds the cursor (about 2 KB) whatever the history; files of a day that is
not a window yet are not recorded, so they count as new once it is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from watchkeeper.inference_log import DropFile, files_digest

RECENT_DAYS = 35     # more than the label delay, so late labels and rewrites of a recent day are all seen


def by_day(files: Iterable[DropFile]) -> dict[str, list[DropFile]]:
    groups: dict[str, list[DropFile]] = defaultdict(list)
    for file in files:
        groups[file.day].append(file)
    return dict(groups)


@dataclass
class StreamSeen:
    """One stream's part of the cursor."""

    newest_ns: int = 0                                    # newest modification time seen
    days: dict[str, str] = field(default_factory=dict)   # recent day -> digest of its files

    def changes(self, files: list[DropFile], horizon: str) -> dict[str, list[DropFile]]:
        """Days with new or changed files (days from `horizon` on are compared by digest), each
        with its new files; when none is newer than what was seen (a file renamed in with an old
        time, or one removed), every file of the day."""
        changed = {}
        for day, group in by_day(files).items():
            fresh = [f for f in group if f.mtime_ns > self.newest_ns]
            moved = self.days.get(day) != files_digest(group) if day >= horizon else bool(fresh)
            if moved:
                changed[day] = fresh or group
        return changed

    def after(self, files: list[DropFile], done: Iterable[str], horizon: str, complete: bool) -> StreamSeen:
        """What has been seen once the changed days in `done` are handled. Days left for a later
        tick keep what was seen before; `complete` says none was left, so the newest time can move."""
        groups = by_day(files)
        days = {day: digest for day, digest in self.days.items() if day >= horizon and day in groups}
        days |= {day: files_digest(groups[day]) for day in done if day >= horizon}
        newest = max([self.newest_ns, *(f.mtime_ns for f in files)]) if complete else self.newest_ns
        return StreamSeen(newest, days)


@dataclass
class DropCursor:
    """The inference sensor's cursor (JSON)."""

    streams: dict[str, StreamSeen] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)   # file -> [version, reason]
    reported: dict[str, str] = field(default_factory=dict)           # asset -> digest of its last skip report

    @classmethod
    def load(cls, text: str | None) -> DropCursor:
        data = json.loads(text) if text else {}
        return cls({stream: StreamSeen(**seen) for stream, seen in data.get("streams", {}).items()},
                   data.get("unreadable", {}), data.get("reported", {}))

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def seen(self, stream: str) -> StreamSeen:
        return self.streams.get(stream, StreamSeen())
