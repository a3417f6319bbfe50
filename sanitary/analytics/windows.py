"""Per-frame observations folded into per-window aggregates: pure functions, no I/O.

Aggregates hold sums, counts and maxima only, so that windows split across files, workers or machines
merge exactly by adding sums and counts and taking maxima.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from sanitary.analytics.mask_rate import MaskShares, mask_shares
from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.tracking.ledger import Contact, Crossing, PersonSummary

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WindowKey:
    """The one key of every stored aggregate row; `source` is a file's content hash or a live unit's stream."""

    site_id: str
    camera_id: str
    source: str
    window_start: datetime


@dataclass(frozen=True)
class DistancingWindow:
    """Close contacts and spacing over a window; present only for a calibrated camera."""

    close_pair_frames: int  # frames with at least one close pair
    close_pairs_sum: int  # close pairs summed over frames
    people_close_sum: int  # people in a close pair, summed over frames
    nearest_min_m: float | None  # smallest nearest-neighbour distance seen; None with fewer than 2 people
    nearest_median_m: float | None  # median over every person-frame's nearest-neighbour distance


@dataclass(frozen=True)
class ZoneWindow:
    name: str
    area_m2: float | None  # None for a pixel zone of an uncalibrated camera
    people_sum: int | None  # None: suppressed, too few people in the window (analytics/privacy.py)
    people_max: int | None


@dataclass(frozen=True)
class PersonEvents:
    """What tracked people did that is counted where it happened: line crossings and close contacts."""

    crossings: list[Crossing]
    contacts: list[Contact]
    line_names: tuple[str, ...]


@dataclass(frozen=True)
class PersonWindow:
    """Counts of distinct people over a window, from tracks: each person once, however long they stayed."""

    people_distinct: int
    masks: MaskCounts  # people by their mask vote
    mask_shares: MaskShares | None
    # People whose visit ended in this window, by dwell-time bin ((): not stored; None per bin: suppressed).
    dwell_counts: tuple[int | None, ...]
    close_contacts: int | None  # pairs close for at least the contact time, during this window (None: not stored)


@dataclass(frozen=True)
class LineWindow:
    name: str
    people_in: int | None  # None: suppressed, too few people in the window
    people_out: int | None


@dataclass(frozen=True)
class WindowAggregate:
    key: WindowKey
    window_end: datetime
    frames_analysed: int
    covered_s: float  # seconds of footage this source holds inside the window
    people_sum: int  # sum over analysed frames of people seen: mean occupancy = people_sum / frames_analysed
    people_max: int
    masks: MaskCounts  # face-frames by mask reading, summed over analysed frames
    mask_shares: MaskShares | None  # corrected for classifier error; None where no face was classified
    distancing: DistancingWindow | None
    zones: tuple[ZoneWindow, ...]
    persons: PersonWindow | None = None
    lines: tuple[LineWindow, ...] = ()
    # Fewer than k people (analytics/privacy.py): the window keeps only its people counts, no mask count or rate,
    # dwell, crossing, opt-out, contact, distancing or zone count.
    mask_suppressed: bool = False
    # People who shook their head "no" in this window, nothing else of them counted (None: suppressed).
    opt_outs: int | None = 0

    @property
    def faces_sum(self) -> int:
        return self.masks.total


def window_start(at: datetime, window_s: int) -> datetime:
    """Windows are aligned on multiples of their length since the Unix epoch (UTC), so every camera shares them."""
    seconds = (at - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=(seconds // window_s) * window_s)


def coverage(start: datetime, duration_s: float, window: datetime, window_s: int) -> float:
    """Seconds of a footage span [start, start + duration) that fall inside the window [window, window + length)."""
    lo = max(start, window)
    hi = min(start + timedelta(seconds=duration_s), window + timedelta(seconds=window_s))
    return max(0.0, (hi - lo).total_seconds())


def aggregate(
    observations: Iterable[Observation],
    *,
    site_id: str,
    camera_id: str,
    source: str,
    start: datetime,
    duration_s: float,
    window_s: int,
    confusion: np.ndarray,
    zones: tuple[tuple[str, float | None], ...] = (),
    people: list[PersonSummary] | None = None,
    events: PersonEvents | None = None,
    dwell_bins_s: tuple[float, ...] = (),
    opt_out_times: Sequence[float] = (),
) -> list[WindowAggregate]:
    """One aggregate per window the footage touches, in time order; a window with footage but no
    analysed frame (a very low sample rate) still appears, with zero frames, so it is never taken for empty.
    `confusion` is the mask classifier's validation confusion matrix (counts), for the rate's interval."""
    buckets: dict[datetime, list[Observation]] = {}
    first = window_start(start, window_s)
    last = window_start(start + timedelta(seconds=max(duration_s, 0.0)), window_s)
    w = first
    while w <= last:
        if coverage(start, duration_s, w, window_s) > 0:
            buckets[w] = []
        w += timedelta(seconds=window_s)
    for obs in observations:
        buckets.setdefault(window_start(start + timedelta(seconds=obs.t), window_s), []).append(obs)

    def when(t: float) -> datetime:
        return window_start(start + timedelta(seconds=t), window_s)

    present: dict[datetime, list[PersonSummary]] = {}
    ended: dict[datetime, list[PersonSummary]] = {}
    for person in people or []:
        for w in {when(t) for t in person.seen_t}:
            present.setdefault(w, []).append(person)
        if person.ended:
            ended.setdefault(when(person.last_t), []).append(person)
    windows = []
    for w, obs in sorted(buckets.items()):
        masks = sum((o.masks for o in obs), MaskCounts())
        windows.append(
            WindowAggregate(
                key=WindowKey(site_id, camera_id, source, w),
                window_end=w + timedelta(seconds=window_s),
                frames_analysed=len(obs),
                covered_s=round(coverage(start, duration_s, w, window_s), 6),
                people_sum=sum(o.people for o in obs),
                people_max=max((o.people for o in obs), default=0),
                masks=masks,
                mask_shares=mask_shares(masks.classified, confusion),
                distancing=distancing_window(obs),
                zones=zone_windows(obs, zones),
                persons=None
                if people is None
                else person_window(w, present.get(w, []), ended.get(w, []), events, when, dwell_bins_s, confusion),
                lines=line_windows(w, events, when),
                opt_outs=sum(when(t) == w for t in opt_out_times),
            )
        )
    return windows


def person_window(
    w: datetime,
    present: list[PersonSummary],
    ended: list[PersonSummary],
    events: PersonEvents | None,
    when: Callable[[float], datetime],
    dwell_bins_s: tuple[float, ...],
    confusion: np.ndarray,
) -> PersonWindow:
    """People seen in window `w` (`present`) by mask vote; those whose visit ended in it (`ended`) by dwell."""
    masks = MaskCounts.of(np.array([p.mask for p in present], np.int64))
    dwell = [0] * (len(dwell_bins_s) + 1)
    for p in ended:
        dwell[bisect.bisect_right(dwell_bins_s, p.dwell_s)] += 1
    contacts = [c for c in events.contacts if when(c.start_t) <= w <= when(c.end_t)] if events else []
    return PersonWindow(len(present), masks, mask_shares(masks.classified, confusion), tuple(dwell), len(contacts))


def line_windows(w: datetime, events: PersonEvents | None, when: Callable[[float], datetime]) -> tuple[LineWindow, ...]:
    if events is None:
        return ()
    here = [c for c in events.crossings if when(c.t) == w]
    return tuple(
        LineWindow(name, sum(c.inward for c in here if c.line == k), sum(not c.inward for c in here if c.line == k))
        for k, name in enumerate(events.line_names)
    )


def distancing_window(observations: list[Observation]) -> DistancingWindow | None:
    if not observations or not all(o.ground.measured for o in observations):
        return None
    nearest = [d for o in observations for d in o.ground.nearest_m]
    return DistancingWindow(
        close_pair_frames=sum(o.ground.close_pairs > 0 for o in observations),
        close_pairs_sum=sum(o.ground.close_pairs for o in observations),
        people_close_sum=sum(o.ground.people_close for o in observations),
        nearest_min_m=min(nearest) if nearest else None,
        nearest_median_m=float(np.median(nearest)) if nearest else None,
    )


def zone_windows(
    observations: list[Observation], zones: tuple[tuple[str, float | None], ...]
) -> tuple[ZoneWindow, ...]:
    """Occupancy of each (name, area) zone over the window, in the order of `zones`."""
    return tuple(
        ZoneWindow(
            name,
            area,
            sum(o.ground.zone_people[z] for o in observations),
            max((o.ground.zone_people[z] for o in observations), default=0),
        )
        for z, (name, area) in enumerate(zones)
    )
