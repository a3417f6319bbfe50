"""Who is in a crowded frame: the detected people, plus the heads that no detected person accounts for.

The person detector sees whole bodies and misses the ones that stalls, seats and other people hide; the head
model sees heads, hidden bodies or not, but knows nothing of a body. A head inside the head region of a detected
person is that person; every other head is one more person. Pure functions, no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sanitary.perception.boxes import Detections, inside_polygon
from sanitary.perception.heads import Heads

# Where a standing person's head centre sits in their box, as shares of the box: half way across, a tenth of
# the height down (a head is about a seventh of a person).
HEAD_X, HEAD_Y = 0.5, 0.1
# How far from that place, in shares of the box width and height, a head still belongs to the box: boxes of
# people leaning, turned or cut by the frame put the head off its ideal place.
REACH_X, REACH_Y = 0.6, 0.2
# From head centre to feet, a share of the person's height.
HEAD_TO_FEET = 1.0 - HEAD_Y
NO_FEET = np.zeros((0, 2), np.float32)


@dataclass(frozen=True)
class Crowd:
    """The people of one frame: the detected ones and the heads nobody detected accounts for."""

    people: Detections
    heads: Heads  # every head found
    unboxed: np.ndarray  # (M,) int64: indices into `heads` of the heads no detected person accounts for
    unboxed_feet: np.ndarray  # (M, 2) float32: where each of those people stands, estimated (`feet_below`)

    @property
    def count(self) -> int:
        return len(self.people) + len(self.unboxed)


def unaccounted(people: Detections, heads: Heads) -> np.ndarray:
    """Indices of the heads no detected person accounts for. Each person accounts for at most one head: the one
    nearest their box's head place, within reach; closest pairs are matched first."""
    if len(heads) == 0 or len(people) == 0:
        return np.arange(len(heads), dtype=np.int64)
    boxes = people.boxes.astype(np.float64)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    place_x = boxes[:, 0] + HEAD_X * w
    place_y = boxes[:, 1] + HEAD_Y * h
    points = heads.points.astype(np.float64)
    # Offsets in units of each box's reach: within 1 on both axes is within reach.
    dx = (points[None, :, 0] - place_x[:, None]) / (REACH_X * w[:, None])
    dy = (points[None, :, 1] - place_y[:, None]) / (REACH_Y * h[:, None])
    cost = np.hypot(dx, dy)
    cost[(np.abs(dx) > 1) | (np.abs(dy) > 1)] = np.inf
    taken = np.zeros(len(heads), bool)
    used = np.zeros(len(people), bool)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        person, head = divmod(int(flat), len(heads))
        if not np.isfinite(cost[person, head]):
            break
        if not used[person] and not taken[head]:
            used[person] = taken[head] = True
    return np.flatnonzero(~taken).astype(np.int64)


def height_at(people: Detections, head_y: np.ndarray) -> np.ndarray | None:
    """A person's height in pixels with their head at each image row `head_y`, learnt from the detected people of
    the frame (a fixed camera over a ground plane sees people shrink linearly towards the horizon); None with
    nobody detected."""
    if len(people) == 0:
        return None
    heights = (people.boxes[:, 3] - people.boxes[:, 1]).astype(np.float64)
    rows = people.boxes[:, 1].astype(np.float64) + HEAD_Y * heights
    fallback = np.full(len(head_y), float(np.median(heights)))
    if len(people) < 3 or np.ptp(rows) < 1.0:
        return fallback
    slope, intercept = np.polyfit(rows, heights, 1)
    if slope < 0:  # nearer people looking smaller: boxes of sitting or cut people, not perspective
        return fallback
    # Beyond the detected people's rows, the line is an extrapolation: kept within the sizes seen, halved or doubled.
    return np.clip(intercept + slope * head_y.astype(np.float64), heights.min() / 2, heights.max() * 2)


def feet_below(people: Detections, points: np.ndarray) -> np.ndarray:
    """Where the people whose head centres are `points` stand: a person's height below the head, that height
    learnt from the detected people; the head point itself when nobody was detected to learn it from."""
    feet = points.astype(np.float32).copy()
    heights = height_at(people, points[:, 1])
    if heights is not None and len(points):
        feet[:, 1] += (HEAD_TO_FEET * heights).astype(np.float32)
    return feet


def fuse(people: Detections, heads: Heads, walkable: np.ndarray | None, unboxed_score: float) -> Crowd:
    """The frame's crowd. A head no body accounts for must reach `unboxed_score`, above the score a head needs to
    confirm a detected body: alone, it is the only evidence of a person. Like detected people, it counts only where
    its feet stand on `walkable` (an image polygon, None for the whole frame)."""
    unboxed = unaccounted(people, heads)
    unboxed = unboxed[heads.scores[unboxed] >= unboxed_score]
    feet = feet_below(people, heads.points[unboxed])
    if walkable is not None and len(unboxed):
        standing = inside_polygon(feet, walkable)
        unboxed, feet = unboxed[standing], feet[standing]
    return Crowd(people, heads, unboxed, feet)
