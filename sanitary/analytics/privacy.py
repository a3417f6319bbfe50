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


# The same rule over stored rows, for a central store that takes in windows suppressed elsewhere, or not: it applies
# its own k to whatever arrives. `window_people` on a window_aggregates row, and the columns `_suppress_small` leaves
# NULL in each table (the store writes a None as NULL); tests/analytics/test_privacy.py holds the two forms equal.
STORED_PEOPLE = "coalesce(people_distinct, people_max)"
_SUPPRESSED_COLUMNS = {
    "window_aggregates": (
        "faces_with_mask", "faces_without_mask", "faces_mask_incorrect", "faces_mask_unknown", "mask_rate",
        "mask_rate_low", "mask_rate_high", "close_pair_frames", "close_pairs_sum", "people_close_sum",
        "nearest_min_m", "nearest_median_m", "persons_with_mask", "persons_without_mask", "persons_mask_incorrect",
        "persons_mask_unknown", "person_mask_rate", "person_mask_rate_low", "person_mask_rate_high", "close_contacts",
        "opt_outs",
    ),
    "zone_windows": ("people_sum", "people_max"),
    "dwell_windows": ("people",),
    "line_windows": ("people_in", "people_out"),
}  # fmt: skip


# What `_profile_measures` drops under FR_TRANSPORT, as stored: distancing and contacts NULL, no zone or dwell rows.
_TRANSPORT_NULLED = (
    "close_pair_frames", "close_pairs_sum", "people_close_sum", "nearest_min_m", "nearest_median_m", "close_contacts",
)  # fmt: skip
_TRANSPORT_DROPPED = ("zone_windows", "dwell_windows")


def transport_stored(windows: str) -> list[str]:
    """Statements applying FR_TRANSPORT, as `_profile_measures` does, to the stored windows whose (site_id,
    camera_id, source, window_start) the query `windows` yields."""
    keyed = f"(site_id, camera_id, source, window_start) IN ({windows})"
    nulled = ", ".join(f"{c} = NULL" for c in _TRANSPORT_NULLED)
    return [
        f"UPDATE window_aggregates SET {nulled}, privacy_profile = '{FR_TRANSPORT}' WHERE {keyed}",
        *(f"DELETE FROM {table} WHERE {keyed}" for table in _TRANSPORT_DROPPED),
    ]


def suppress_stored(small: str) -> list[str]:
    """Statements suppressing, as `_suppress_small` does, the stored windows whose (site_id, camera_id, source,
    window_start) the query `small` yields."""
    keyed = f"(site_id, camera_id, source, window_start) IN ({small})"
    statements = []
    for table, columns in _SUPPRESSED_COLUMNS.items():
        flag = ", mask_suppressed = true" if table == "window_aggregates" else ""
        statements.append(f"UPDATE {table} SET {', '.join(f'{c} = NULL' for c in columns)}{flag} WHERE {keyed}")
    return statements
