"""What the compliance profile lets out of memory: pure functions over frames and window aggregates.

Privacy masks blank pixels before any detector runs, so nothing behind a private window is ever seen. The profile
then decides which measures of a window may be stored, and the minimum cell size k keeps every measure of a window
with fewer than k people (a mask rate, a dwell time, a crossing, an opt-out, a contact, a distance, a zone's count)
from telling what one of a handful of people did: such a window keeps only its people counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sanitary.analytics.windows import LineWindow, WindowAggregate, ZoneWindow
from sanitary.config import FR_TRANSPORT, PrivacyConfig


def window_people(w: WindowAggregate) -> int:
    """How many people a window's measures are about: distinct people where tracked, else the most seen at once."""
    return w.persons.people_distinct if w.persons is not None else w.people_max


def apply_profile(windows: Sequence[WindowAggregate], privacy: PrivacyConfig) -> list[WindowAggregate]:
    """The windows as the profile allows them to be stored."""
    return [_suppress_small(_profile_measures(w, privacy.profile), privacy.k_min) for w in windows]


def _profile_measures(w: WindowAggregate, profile: str) -> WindowAggregate:
    if profile != FR_TRANSPORT:
        return w
    # The decree allows people counts (in and out included) and mask rates: no distancing, zones, dwell or contacts.
    persons = dataclasses.replace(w.persons, dwell_counts=(), close_contacts=None) if w.persons else None
    return dataclasses.replace(w, distancing=None, zones=(), persons=persons)


def _suppress_small(w: WindowAggregate, k_min: int) -> WindowAggregate:
    if window_people(w) >= k_min:
        return w
    # Only the people counts stay (frames, coverage, occupancy, the most at once, distinct people). Every other
    # measure becomes None, stored as NULL, never 0: the per-class mask counts would give the rate back, and a
    # dwell bin, a crossing, an opt-out, a contact, a distance or a zone's count of so few people is someone's.
    # The zone and line rows stay, emptied, so a view reads them as suppressed rather than as not configured.
    persons = (
        dataclasses.replace(
            w.persons,
            mask_shares=None,
            dwell_counts=tuple(None for _ in w.persons.dwell_counts),
            close_contacts=None,
        )
        if w.persons
        else None
    )
    return dataclasses.replace(
        w,
        mask_shares=None,
        persons=persons,
        mask_suppressed=True,
        distancing=None,
        zones=tuple(ZoneWindow(z.name, z.area_m2, None, None) for z in w.zones),
        lines=tuple(LineWindow(x.name, None, None) for x in w.lines),
        opt_outs=None,
    )
