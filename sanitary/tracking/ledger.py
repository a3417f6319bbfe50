"""What each tracked person did, kept in memory only while their track lives, handed on without identity.

When a track ends, its record becomes a `PersonSummary` (when seen, mask vote) with no id; line crossings and
close contacts become anonymous events. Pure bookkeeping: no image, no position is kept beyond the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sanitary.perception.mask_classes import READ, MaskClass


@dataclass(frozen=True)
class PersonSummary:
    first_t: float
    last_t: float
    seen_t: tuple[float, ...]  # times of the frames the person was tracked in (to place them in windows)
    mask: MaskClass  # by vote
    mask_frames: int  # frames whose confident reading took part in the vote
    ended: bool = True  # False: a live track, summarised so far (a live unit closing a window)

    @property
    def dwell_s(self) -> float:
        return self.last_t - self.first_t


@dataclass(frozen=True)
class Crossing:
    line: int  # index into the camera's lines
    inward: bool
    t: float


@dataclass(frozen=True)
class Contact:
    """Two people closer than the distancing threshold from `start_t` to `end_t`, for at least the contact time."""

    start_t: float
    end_t: float


@dataclass
class _Record:
    first_t: float
    last_t: float
    seen_t: list[float] = field(default_factory=list)
    readings: list[tuple[float, int]] = field(default_factory=list)  # (t, class) of confident mask readings
    last_point: dict[int, np.ndarray] = field(default_factory=dict)  # per line: last feet point in its units
    # Held until the track ends, so that an opt-out can still take back those of the open window.
    crossings: list[Crossing] = field(default_factory=list)
    opted_out_t: float | None = None  # counted only before this time: the start of the window they opted out in


def vote(votes: np.ndarray, min_frames: int) -> MaskClass:
    """The class most often read (`votes` counts readings per class); UNKNOWN with too few readings or a tie
    between the top classes."""
    if votes.sum() < min_frames:
        return MaskClass.UNKNOWN
    top = np.flatnonzero(votes == votes.max())
    return MaskClass(top[0]) if len(top) == 1 else MaskClass.UNKNOWN


def crossing_side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """> 0 when p is left of the directed line a -> b (in image pixels, y down: right of it on screen)."""
    return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))


def crosses(a: np.ndarray, b: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> bool | None:
    """Whether the step p0 -> p1 crosses the segment a-b: True inward (from its left to its right),
    False outward, None when it does not cross."""
    s0, s1 = crossing_side(a, b, p0), crossing_side(a, b, p1)
    if s0 == 0 or (s0 > 0) == (s1 > 0) or s1 == 0:
        return None
    # The step must also pass between a and b, not beyond an end of the door.
    t0, t1 = crossing_side(p0, p1, a), crossing_side(p0, p1, b)
    if (t0 > 0) == (t1 > 0):
        return None
    return s0 < 0


class PersonLedger:
    def __init__(
        self,
        lines: list[tuple[np.ndarray, np.ndarray]],
        min_mask_frames: int,
        contact_s: float,
        min_person_s: float = 0.0,
    ) -> None:
        self.lines = lines
        self.min_mask_frames = min_mask_frames
        self.contact_s = contact_s
        self.min_person_s = min_person_s
        self.records: dict[int, _Record] = {}
        self.pairs: dict[tuple[int, int], tuple[float, float]] = {}  # close since, last seen close
        self.people: list[PersonSummary] = []
        self.crossings: list[Crossing] = []
        self.contacts: list[Contact] = []
        self.pair_starts: list[float] = []  # when each close pair began, for the close-pairs alert

    def update(
        self,
        t: float,
        ids: np.ndarray,
        masks: np.ndarray,
        line_points: list[np.ndarray],
        close: set[tuple[int, int]],
    ) -> None:
        """One frame: `masks` is each tracked person's mask reading (a MaskClass value), `line_points[k]` their feet
        in line k's units, `close` the pairs of track ids close in this frame."""
        for i, track in enumerate(ids.tolist()):
            record = self.records.setdefault(track, _Record(t, t))
            record.last_t = t
            record.seen_t.append(t)
            if masks[i] != MaskClass.UNKNOWN:
                record.readings.append((t, int(masks[i])))
            for k, (a, b) in enumerate(self.lines):
                point = line_points[k][i]
                previous = record.last_point.get(k)
                if previous is not None and (inward := crosses(a, b, previous, point)) is not None:
                    record.crossings.append(Crossing(k, inward, t))
                record.last_point[k] = point
        self._pairs(t, close)

    def _pairs(self, t: float, close: set[tuple[int, int]]) -> None:
        for pair in close:
            if pair not in self.pairs:
                self.pair_starts.append(t)
            since, _ = self.pairs.get(pair, (t, t))
            self.pairs[pair] = (since, t)
        for pair in [p for p in self.pairs if p not in close]:
            self._end_pair(pair)

    def _end_pair(self, pair: tuple[int, int]) -> None:
        since, last = self.pairs.pop(pair)
        if last - since >= self.contact_s:
            self.contacts.append(Contact(since, last))

    def opt_out(self, track: int, since_t: float) -> None:
        """The person shook their head: nothing of them from `since_t` on is counted (nor the contacts they are in
        now); the caller stops passing their track to `update`."""
        record = self.records.get(track)
        if record is not None:
            record.opted_out_t = since_t
        for pair in [p for p in self.pairs if track in p]:
            del self.pairs[pair]

    def end(self, tracks: tuple[int, ...]) -> None:
        """Tracks that ended: their records become anonymous summaries and are forgotten."""
        for track in tracks:
            record = self.records.pop(track, None)
            if record is None:
                continue  # never a confirmed person
            for pair in [p for p in self.pairs if track in p]:
                self._end_pair(pair)
            self.crossings.extend(_counted(record.crossings, record))
            if (summary := _summary(record, self.min_person_s, self.min_mask_frames, ended=True)) is not None:
                self.people.append(summary)

    def snapshot(self) -> tuple[list[PersonSummary], list[Crossing]]:
        """The people still tracked, summarised so far, and their crossings not yet handed on: what a live unit
        needs to close a window while people are still in view."""
        people = [_summary(r, self.min_person_s, self.min_mask_frames, ended=False) for r in self.records.values()]
        crossings = [c for r in self.records.values() for c in _counted(r.crossings, r)]
        return [p for p in people if p is not None], crossings

    def forget_before(self, t: float) -> None:
        """A live unit committed everything before `t`: drop what only those windows needed, so memory stays flat."""
        self.people = [p for p in self.people if p.last_t >= t]
        self.crossings = [c for c in self.crossings if c.t >= t]
        self.contacts = [c for c in self.contacts if c.end_t >= t]
        self.pair_starts = [s for s in self.pair_starts if s >= t]
        for record in self.records.values():
            record.crossings = [c for c in record.crossings if c.t >= t]
            record.seen_t = [s for s in record.seen_t if s >= t] or record.seen_t[-1:]


def _counted(crossings: list[Crossing], record: _Record) -> list[Crossing]:
    cutoff = record.opted_out_t if record.opted_out_t is not None else float("inf")
    return [c for c in crossings if c.t < cutoff]


def _summary(record: _Record, min_person_s: float, min_mask_frames: int, *, ended: bool) -> PersonSummary | None:
    """What is counted of a person: nothing from the window they opted out in; nothing at all of a flicker (a live
    track not yet long enough is left to the next window, where it is counted if it lasts)."""
    cutoff = record.opted_out_t if record.opted_out_t is not None else float("inf")
    seen = tuple(t for t in record.seen_t if t < cutoff)
    if not seen or record.last_t - record.first_t < min_person_s:
        return None
    votes = np.bincount([c for t, c in record.readings if t < cutoff], minlength=len(READ))
    return PersonSummary(record.first_t, seen[-1], seen, vote(votes, min_mask_frames), int(votes.sum()), ended)
