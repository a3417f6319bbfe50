"""The opt-out signage register: which signs told people they were being counted, and when.

Footage from a time no sign covered was taken without telling anyone; it is analysed only on an explicit,
recorded override. Pure functions over the register; the store keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sign:
    sign_id: str
    site_id: str
    camera_id: str
    text: str  # what the sign says, word for word
    language: str  # e.g. "fr", "en"
    location: str  # where it stands, e.g. "front door, at eye height"
    posted_at: datetime
    removed_at: datetime | None = None  # None: still up

    def covers(self, at: datetime) -> bool:
        return self.posted_at <= at and (self.removed_at is None or at < self.removed_at)


def uncovered(signs: Sequence[Sign], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) during which no sign was up, in time order."""
    gaps: list[tuple[datetime, datetime]] = []
    at = start
    spans = sorted((s.posted_at, s.removed_at or datetime.max.replace(tzinfo=start.tzinfo)) for s in signs)
    for posted, removed in spans:
        if at >= end:
            break
        if removed <= at:
            continue
        if posted > at:
            gaps.append((at, min(posted, end)))
        at = max(at, removed)
    if at < end:
        gaps.append((at, end))
    return gaps
