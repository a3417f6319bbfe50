"""What the compliance profile lets out of memory: pure functions over frames and window aggregates.

Privacy masks blank pixels before any detector runs, so nothing behind a private window is ever seen. The profile
then decides which measures of a window may be stored, and the minimum cell size k keeps a mask rate from telling
who of a handful of people wore a mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sanitary.analytics.windows import WindowAggregate
from sanitary.config import FR_TRANSPORT, PrivacyConfig


def window_people(w: WindowAggregate) -> int:
    """How many people a window's mask rate is about: distinct people where tracked, else the most seen at once."""
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
    # The per-class counts would give the rate back, so they go with it; the people count stays.
    persons = dataclasses.replace(w.persons, mask_shares=None) if w.persons else None
    return dataclasses.replace(w, mask_shares=None, persons=persons, mask_suppressed=True)
