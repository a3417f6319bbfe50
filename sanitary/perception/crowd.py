"""Who is in a crowded frame: the detected people, plus the heads that no detected person accounts for.

The person detector sees whole bodies and misses the ones that stalls, seats and other people hide; the head
model sees heads, hidden bodies or not, but knows nothing of a body. A head at the top of a detected person's box
is that person; every other head is one more person. Where a head sits in a box and how far its body reaches
below it are measured in that head's own size, not in the box's proportions: a seated person's box ends at the
seat, a standing person's at the feet, and both have their head at the top. Pure functions, no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sanitary.config import HeadConfig
from sanitary.perception.boxes import Detections, inside_polygon
from sanitary.perception.heads import Heads

# Where a head's centre sits in its person's box, in sides of that head: half way across, 0.7 heads below the
# box's top (the box is a little taller than the head it starts with).
HEAD_DOWN = 0.7
# How far from that place, in sides of the head, a head still belongs to the box: boxes of people leaning, turned
# or cut by the frame put the head off its ideal place. For a standing person (seven heads tall, two and a half
# wide) this is the reach of 0.6 of the box's width across and 0.2 of its height up or down.
REACH_ACROSS, REACH_UP_DOWN = 1.5, 1.4
# From a head's centre down to where its person stands, in sides of the head: 6.5 for someone standing (seven
# heads tall). Seated people stand nearer their heads (their box ends at the seat, 2-4 heads below): a frame's
# detected people with a head measure it; this is the figure when none does, kept between the two bounds.
STANDING_DEPTH = 6.5
MIN_DEPTH, MAX_DEPTH = 2.0, 7.5
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


def owners(people: Detections, heads: Heads) -> np.ndarray:
    """(N,) int64: each detected person's head, an index into `heads` (-1: none). A person's head is the one
    nearest the head place at the top of their box, within reach, both measured in that head's size (never wider
    than the box); closest pairs are matched first, each head to one person."""
    owner = np.full(len(people), -1, np.int64)
    if len(heads) == 0 or len(people) == 0:
        return owner
    boxes = people.boxes.astype(np.float64)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    side = np.minimum(np.maximum(heads.sizes.astype(np.float64)[None, :], 1.0), w[:, None])
    points = heads.points.astype(np.float64)
    # Offsets in units of each pair's reach: within 1 on both axes is within reach.
    dx = (points[None, :, 0] - (boxes[:, 0] + boxes[:, 2])[:, None] / 2) / (REACH_ACROSS * side)
    dy = (points[None, :, 1] - boxes[:, 1, None] - HEAD_DOWN * side) / (REACH_UP_DOWN * side)
    cost = np.hypot(dx, dy)
    cost[(np.abs(dx) > 1) | (np.abs(dy) > 1)] = np.inf
    taken = np.zeros(len(heads), bool)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        person, head = divmod(int(flat), len(heads))
        if not np.isfinite(cost[person, head]):
            break
        if owner[person] < 0 and not taken[head]:
            owner[person], taken[head] = head, True
    return owner


def stacked(people: Detections, heads: Heads, owner: np.ndarray) -> np.ndarray:
    """(N,) bool: heads that may be a second peak of a detected person's own head: inside their box, between its
    top (less half a head) and the head they own, and in line with it (within one of its sides across). The model
    fires twice on some people, on the head and on the shoulders below it, and the nearer to the box's head place
    is owned: on PETS (every 4th frame) 53 of the 66 lone heads counted were such a pair. In a crowd the same place
    holds the head of someone behind (on ShanghaiTech B's tuning photos, 12 of 122 people a photo), so `fuse` drops
    these only outside crowds."""
    twin = np.zeros(len(heads), bool)
    mine = np.flatnonzero(owner >= 0)
    if len(mine) == 0:
        return twin
    own = owner[mine]
    side = np.maximum(heads.sizes[own].astype(np.float64), 1.0)[:, None]
    points = heads.points.astype(np.float64)
    top = people.boxes[mine, 1].astype(np.float64)[:, None]
    above = (points[None, :, 1] < points[own, 1][:, None]) & (points[None, :, 1] >= top - side / 2)
    in_line = np.abs(points[None, :, 0] - points[own, 0][:, None]) <= side
    twin[np.flatnonzero((above & in_line).any(axis=0))] = True
    twin[own] = False
    return twin


def unaccounted(owner: np.ndarray, heads: Heads) -> np.ndarray:
    """Indices of the heads no detected person accounts for (`owner` from `owners`)."""
    return np.setdiff1d(np.arange(len(heads), dtype=np.int64), owner[owner >= 0])


def ground_depth(people: Detections, heads: Heads, owner: np.ndarray) -> float:
    """Heads from a head's centre down to where its person stands, as the frame's detected people with a head
    show it (the median over them, from their head to their box's bottom), within MIN_DEPTH-MAX_DEPTH; a standing
    person's STANDING_DEPTH when no detected person has a head."""
    mine = np.flatnonzero(owner >= 0)
    if len(mine) == 0:
        return STANDING_DEPTH
    head = owner[mine]
    depth = (people.boxes[mine, 3] - heads.points[head, 1]) / np.maximum(heads.sizes[head], 1.0)
    return float(np.clip(np.median(depth), MIN_DEPTH, MAX_DEPTH))


def feet_below(heads: Heads, chosen: np.ndarray, depth: float) -> np.ndarray:
    """(M, 2) float32: where the people whose heads are `heads[chosen]` stand, `depth` of their heads below."""
    feet = heads.points[chosen].astype(np.float32).reshape(-1, 2).copy()
    feet[:, 1] += np.float32(depth) * heads.sizes[chosen].astype(np.float32)
    return feet


def is_crowd(heads: int, unboxed: int, config: HeadConfig) -> bool:
    """A frame of `heads` heads, `unboxed` of which no detected body accounts for, is a crowd when those make at
    least `crowd_heads` heads and `crowd_share` of the heads: the detector sees few of its people."""
    return unboxed >= config.crowd_heads and unboxed >= config.crowd_share * heads


def unboxed_min_score(crowd: bool, config: HeadConfig) -> float:
    """The score a head no detected body accounts for needs to count. In a crowd most people are only a head: the
    head model's own `min_score`. Elsewhere the detector sees most people, and a lone head, the only evidence of a
    person, must reach `unboxed_score`: signs and bollards look like heads too."""
    return config.min_score if crowd else config.unboxed_score


def fuse(people: Detections, heads: Heads, walkable: np.ndarray | None, config: HeadConfig) -> Crowd:
    """The frame's crowd: the detected people, and the heads none of them accounts for that reach the frame's
    score (`unboxed_min_score`) and whose feet stand on `walkable` (an image polygon, None for the whole frame),
    as detected people's feet must."""
    owner = owners(people, heads)
    unboxed = unaccounted(owner, heads)
    crowd = is_crowd(len(heads), len(unboxed), config)
    if not crowd:
        unboxed = unboxed[~stacked(people, heads, owner)[unboxed]]
    unboxed = unboxed[heads.scores[unboxed] >= unboxed_min_score(crowd, config)]
    feet = feet_below(heads, unboxed, ground_depth(people, heads, owner))
    if walkable is not None and len(unboxed):
        standing = inside_polygon(feet, walkable)
        unboxed, feet = unboxed[standing], feet[standing]
    return Crowd(people, heads, unboxed, feet)
