"""Each person once: DeepSort (deep-sort-realtime) over the person detections, with cheap appearance features.

The stock embedder (a MobileNetV2 in torch) costs hundreds of milliseconds a frame on a CPU and needs torch.
Colour is enough to tell apart a few people walking past a fixed camera: each box gets hue-saturation histograms
of its upper and lower half, from one colour conversion of the whole frame (README "Tracking" has the measured
comparison). Track ids are small integers that live in this process only and are never written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from deep_sort_realtime.deepsort_tracker import DeepSort

from sanitary.config import TrackingConfig
from sanitary.perception.boxes import Detections

HUE_BINS, SAT_BINS = 8, 4
CORE_SIDE, CORE_END = 0.25, 0.1  # shares of the box's width and height left out of the appearance


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


class PeopleTracker:
    def __init__(self, config: TrackingConfig, analysed_fps: float) -> None:
        self.tracker = DeepSort(
            max_age=max(1, round(config.max_lost_s * analysed_fps)),
            n_init=config.confirm_frames,
            max_iou_distance=config.max_iou_distance,
            max_cosine_distance=config.max_appearance_distance,
            embedder=None,
        )
        self.start_score = config.start_score
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
        now = {int(t.track_id) for t in tracks}
        ended = tuple(sorted(self.live - now))
        self.live = now
        current = [t for t in tracks if t.is_confirmed() and t.time_since_update == 0]
        return Tracks(
            np.array([int(t.track_id) for t in current], np.int64),
            np.array([int(t.others) for t in current], np.int64),
            ended,
        )

    def finish(self) -> tuple[int, ...]:
        """Every track still alive: the footage ended under them."""
        ended = tuple(sorted(self.live))
        self.live = set()
        return ended
