"""Each person once: DeepSort (deep-sort-realtime) over the person detections, with cheap appearance features.

The stock embedder (a MobileNetV2 in torch) costs hundreds of milliseconds a frame on a CPU and needs torch.
Colour is enough to tell apart a few people walking past a fixed camera: each box gets hue-saturation histograms
of the upper and lower half of its core, from one colour conversion of the whole frame. Two rules for the people
DeepSort loses: a doubtful detection never starts a track, and a track that starts where exactly one lost person
could have walked is that person again (README "Tracking" has the measured comparison). Person ids are small
integers that live in this process only and are never written anywhere.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import TrackingConfig
from sanitary.perception.boxes import Detections


@contextmanager
def assignment_solver_alone() -> Iterator[None]:
    """While deep-sort-realtime is imported, `scipy.optimize` is a module holding only `linear_sum_assignment`.

    Its matching takes that one function from scipy.optimize, whose package imports all of scipy's optimisers with
    scipy.sparse, scipy.special and scipy.spatial to give it: 15 MB more resident once imported, and a `sanitary
    run` over PETS at 480x360 peaked at 360-363 MB with them, 335-338 MB without (same runs), for nothing used.
    The function is loaded from the compiled file scipy.optimize itself takes it from (scipy/optimize/_lsap), so the
    tracker runs the same code. Nothing else sees the stand-in: it is gone once deep-sort-realtime is imported, and
    a later `import scipy.optimize` (an evaluation's matching) gets the whole package, whose function is this one.
    """
    if "scipy.optimize" in sys.modules or "deep_sort_realtime.deep_sort.linear_assignment" in sys.modules:
        yield  # scipy.optimize is loaded already, or the matching took its function from it: nothing to spare
        return
    import scipy

    found = importlib.machinery.PathFinder.find_spec("_lsap", [f"{scipy.__path__[0]}/optimize"])
    if found is None or found.origin is None:  # another scipy layout: the whole package, as before
        yield
        return
    # Loaded under its own name (CPython registers it as such): the whole package, imported later, reuses it.
    spec = importlib.util.spec_from_file_location("scipy.optimize._lsap", found.origin, loader=found.loader)
    compiled = importlib.util.module_from_spec(spec)
    found.loader.exec_module(compiled)
    alone = types.ModuleType("scipy.optimize", "scipy.optimize's linear_sum_assignment only (sanitary.tracking)")
    alone.linear_sum_assignment = compiled.linear_sum_assignment
    sys.modules["scipy.optimize"] = alone
    try:
        yield
    finally:
        del sys.modules["scipy.optimize"]


with assignment_solver_alone():
    from deep_sort_realtime.deep_sort.track import TrackState
    from deep_sort_realtime.deepsort_tracker import DeepSort

HUE_BINS, SAT_BINS = 8, 4
# Appearances a track keeps to match against, the latest: DeepSORT's own default (its deep_sort_app). Without one a
# track kept every frame's, so a seated passenger's matching cost and memory grew with the trip; on PETS the recent
# looks also match better (IDF1 0.803 -> 0.898, MOTA 0.898 either way, tracking_benchmark.py).
APPEARANCE_BUDGET = 100
CORE_SIDE, CORE_END = 0.25, 0.1  # shares of the box's width and height left out of the appearance
# How far a lost person may have walked, in their own heights: 2 m/s (a brisk walk) for 1.7 m tall, plus half a
# height because a half-hidden person's box ends at the waist, not the feet.
WALK_HEIGHTS_PER_S, SLACK_HEIGHTS = 1.2, 0.5
EDGE_PX = 1.0  # a box this close to the frame's edge touches it


@dataclass(frozen=True)
class Tracks:
    """The confirmed tracks updated in this frame, and the tracks that ended since the previous frame."""

    ids: np.ndarray  # (M,) int64, ephemeral
    detection: np.ndarray  # (M,) int64: index of the track's person in this frame's Detections
    ended: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


def clip_to_frame(people: Detections, width: int, height: int) -> tuple[Detections, np.ndarray]:
    """Boxes cut to the frame, and the indices of those with an area left (a box wholly outside has none)."""
    boxes = np.clip(people.boxes, 0, [width, height, width, height]).astype(np.float32)
    kept = np.flatnonzero((boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1))
    return Detections(boxes[kept], people.scores[kept]), kept


def appearance(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 2 * HUE_BINS * SAT_BINS) unit vectors: hue-saturation histograms of the upper and lower half of each
    box's core (clothes above and below the waist), from one HSV conversion of the frame.

    The core is the middle half of the box's width from 10% to 90% of its height: a box around a walking person
    is mostly background at its sides, between the legs and under the feet, and background the person walks past
    changes the histogram more than the person does.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    features = np.zeros((len(boxes), 2 * HUE_BINS * SAT_BINS), np.float32)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    core = np.stack(
        [boxes[:, 0] + CORE_SIDE * width, boxes[:, 1] + CORE_END * height, boxes[:, 2] - CORE_SIDE * width,
         boxes[:, 3] - CORE_END * height], axis=1,
    )  # fmt: skip
    for i, (x1, y1, x2, y2) in enumerate(np.round(core).astype(int)):
        middle = (y1 + y2) // 2
        halves = [hsv[y1:middle, x1:x2], hsv[middle:y2, x1:x2]]
        hist = [
            cv2.calcHist([half], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
            if half.size
            else np.zeros(HUE_BINS * SAT_BINS, np.float32)
            for half in halves
        ]
        vector = np.concatenate(hist)
        norm = np.linalg.norm(vector)
        features[i] = vector / norm if norm else vector
    return features


def reachable(last: np.ndarray, first: np.ndarray, gap_s: float) -> bool:
    """Whether a person last seen in box `last` could be the one first seen in box `first` `gap_s` later, walking:
    feet (bottom centres) no further apart than WALK_HEIGHTS_PER_S a second plus SLACK_HEIGHTS, in the two boxes'
    mean height (a person's own height is the scale that needs no calibration)."""
    height = (last[3] - last[1] + first[3] - first[1]) / 2
    step = np.hypot((first[0] + first[2] - last[0] - last[2]) / 2, first[3] - last[3])
    return bool(step <= (SLACK_HEIGHTS + WALK_HEIGHTS_PER_S * gap_s) * height)


@dataclass(frozen=True)
class Sighting:
    frame: int
    box: np.ndarray  # x1 y1 x2 y2
    at_edge: bool  # the box touches the frame's edge: the person may be walking out of view, or into it


def taken_up(first: Sighting, lost: dict[int, Sighting], fps: float) -> int | None:
    """The one lost person who could have walked to where a new track was first seen, after they were last seen;
    None when nobody or several could (then the new track is someone new). A person lost at the frame's edge
    walked out of view: they can only come back in at an edge."""
    could = [
        person
        for person, last in lost.items()
        if last.frame < first.frame
        and (first.at_edge or not last.at_edge)
        and reachable(last.box, first.box, (first.frame - last.frame) / fps)
    ]
    return could[0] if len(could) == 1 else None


class PeopleTracker:
    """DeepSort, plus two rules for people it loses: a doubtful detection never starts a track, and a new track
    that starts where exactly one lost person could have walked since is that person again (their id goes on).

    DeepSort takes a lost track up again only through appearance once it missed more than one frame; people hidden
    behind a sign or another person come back with a changed box and colour, as a new track.
    """

    def __init__(self, config: TrackingConfig, analysed_fps: float) -> None:
        self.tracker = DeepSort(
            max_age=max(1, round(config.max_lost_s * analysed_fps)),
            n_init=config.confirm_frames,
            max_iou_distance=config.max_iou_distance,
            max_cosine_distance=config.max_appearance_distance,
            nn_budget=APPEARANCE_BUDGET,
            embedder=None,
        )
        self.fps = analysed_fps
        self.start_score = config.start_score
        self.frame = 0
        # In memory only, while a track lives: where each track was first seen, whose person a confirmed track
        # is, and where each person was last seen.
        self.born: dict[str, Sighting] = {}
        self.person: dict[str, int] = {}
        self.last: dict[int, Sighting] = {}
        self.next_person = 1
        self.live: set[int] = set()

    def __call__(self, image: np.ndarray, people: Detections) -> Tracks:
        h, w = image.shape[:2]
        inside, kept = clip_to_frame(people, w, h)
        raw = [
            ([float(x1), float(y1), float(x2 - x1), float(y2 - y1)], float(score), "person")
            for (x1, y1, x2, y2), score in zip(inside.boxes, inside.scores, strict=True)
        ]
        tracks = self.tracker.update_tracks(raw, embeds=list(appearance(image, inside.boxes)), others=list(kept))
        # A track is born from a confident detection only (ByteTrack: Zhang et al. 2022): the doubtful ones may
        # keep a person's track going.
        tracks[:] = [t for t in tracks if t.age > 1 or t.det_conf >= self.start_score]
        seen = [t for t in tracks if t.time_since_update == 0]
        sightings = {t.track_id: self._sighting(people.boxes[int(t.others)], w, h) for t in seen}
        for t in seen:
            if t.track_id not in self.born:
                self.born[t.track_id] = sightings[t.track_id]
        for t in seen:
            if t.is_confirmed() and t.track_id not in self.person:
                self.person[t.track_id] = self._identify(t.track_id, tracks)
        tracks[:] = [t for t in tracks if not t.is_deleted()]  # the tracks of people taken up again
        for t in seen:
            if t.track_id in self.person:
                self.last[self.person[t.track_id]] = sightings[t.track_id]
        alive = {t.track_id for t in tracks}
        self.born = {k: v for k, v in self.born.items() if k in alive}
        self.person = {k: v for k, v in self.person.items() if k in alive}
        now = set(self.person.values())
        ended = tuple(sorted(self.live - now))
        self.live = now
        self.last = {k: v for k, v in self.last.items() if k in now}
        self.frame += 1
        current = [t for t in seen if t.is_confirmed()]
        return Tracks(
            np.array([self.person[t.track_id] for t in current], np.int64),
            np.array([int(t.others) for t in current], np.int64),
            ended,
        )

    def _sighting(self, box: np.ndarray, width: int, height: int) -> Sighting:
        edge = box[0] <= EDGE_PX or box[1] <= EDGE_PX or box[2] >= width - EDGE_PX or box[3] >= height - EDGE_PX
        return Sighting(self.frame, box, bool(edge))

    def _identify(self, track_id: str, tracks: list) -> int:
        """The person a newly confirmed track follows: a lost one taken up again (whose old track is deleted), or
        someone new."""
        lost = {
            self.person[t.track_id]: t
            for t in tracks
            if t.track_id in self.person and t.time_since_update > 0 and not t.is_deleted()
        }
        person = taken_up(self.born[track_id], {p: self.last[p] for p in lost}, self.fps)
        if person is None:
            person, self.next_person = self.next_person, self.next_person + 1
        else:
            lost[person].state = TrackState.Deleted
        return person

    def finish(self) -> tuple[int, ...]:
        """Every track still alive: the footage ended under them."""
        ended = tuple(sorted(self.live))
        self.live = set()
        return ended
