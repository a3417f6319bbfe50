"""People on the ground in one frame: close pairs, nearest neighbours, zone occupancy. Pure functions.

Everything here is per frame and stays in memory; only window sums, maxima and order statistics of it are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sanitary.config import DistancingConfig
from sanitary.geometry.homography import (
    ZoneGeometry,
    close_pairs,
    distance_sigma,
    feet_sigma_px,
    nearest_neighbour,
    on_ground,
    pairwise_distances,
    to_ground,
    zone_membership,
)
from sanitary.perception.boxes import Detections


@dataclass(frozen=True)
class FrameDistancing:
    close_pairs: int  # pairs closer than the threshold with the configured confidence
    people_close: int  # people in at least one such pair
    nearest_m: tuple[float, ...]  # each person's distance to their nearest neighbour (no identity: a bag of numbers)
    zone_people: tuple[int, ...]  # people standing in each zone, in config order

    measured: bool = True  # False without a calibration: distances unknown, only pixel zones counted
    # The close pairs as indices into this frame's detections, for the tracker to turn into contacts.
    close_index: tuple[tuple[int, int], ...] = ()


def zone_counts(feet: np.ndarray, H: np.ndarray | None, zones: Sequence[ZoneGeometry]) -> tuple[int, ...]:
    """People standing in each zone; without a calibration only pixel zones can hold anyone."""
    feet = feet.astype(np.float64)
    if H is None:
        inside = zone_membership(feet, np.zeros((0, 2)), zones)
    else:
        standing = on_ground(H, feet)
        inside = zone_membership(feet[standing], to_ground(H, feet[standing]), zones)
    return tuple(int(n) for n in inside.sum(axis=1))


def measure(
    people: Detections,
    H: np.ndarray | None,
    zones: Sequence[ZoneGeometry],
    config: DistancingConfig,
    unboxed_feet: np.ndarray | None = None,
) -> FrameDistancing:
    """Distances need a calibration (H); zones in pixels work without one. `unboxed_feet` are the people only a
    head showed (perception/crowd.py): counted in zones, but their place is an estimate, so no distance is
    measured to them."""
    everyone = people.feet if unboxed_feet is None else np.vstack([people.feet, unboxed_feet])
    zone_people = zone_counts(everyone, H, zones)
    if H is None:
        return FrameDistancing(0, 0, (), zone_people, measured=False)
    feet = people.feet.astype(np.float64)
    heights = (people.boxes[:, 3] - people.boxes[:, 1]).astype(np.float64)
    standing = on_ground(H, feet)
    feet, heights = feet[standing], heights[standing]
    ground = to_ground(H, feet)
    d = pairwise_distances(ground)
    # A person alone has no neighbour: no distance, rather than an infinite one.
    nearest = tuple(float(v) for v in nearest_neighbour(d) if np.isfinite(v))
    if len(ground) < 2:
        return FrameDistancing(0, 0, nearest, zone_people)
    sigma = distance_sigma(H, feet, feet_sigma_px(heights, config.feet_sigma_fraction))
    close = np.triu(close_pairs(d, sigma, config.threshold_m, config.confidence), k=1)
    people_close = int((close | close.T).any(axis=1).sum())
    index = np.flatnonzero(standing)
    pairs = tuple((int(index[i]), int(index[j])) for i, j in np.argwhere(close))
    return FrameDistancing(int(close.sum()), people_close, nearest, zone_people, close_index=pairs)
