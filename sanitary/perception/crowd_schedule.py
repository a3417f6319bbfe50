"""When the head model runs on a source's frames, and the people only a head showed between its runs.

The model costs about twenty detector passes, and occupancy changes slowly: on a video it runs at most every
`heads.every_s`, its people carried over the frames in between. Photos of a folder need not show one scene, so
each photo gets its own run. Live, a run lasts two frames of a 7 fps camera, which would be dropped: it runs in a
thread beside the frames, its count joining them when ready. A file is analysed in order, so that a rerun counts
the same.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sanitary.capture.sources import Frame
from sanitary.config import HeadConfig
from sanitary.perception.boxes import Detections
from sanitary.perception.crowd import NO_FEET, fuse
from sanitary.perception.heads import Heads


class FindsHeads(Protocol):
    def __call__(self, image: np.ndarray, people: Detections) -> Heads: ...


def stands_alone(frame: Frame) -> bool:
    """A frame that shares no scene with the one before (a photo of a folder): nothing is carried over to it."""
    return frame.photo


@dataclass(frozen=True)
class HeadCount:
    """What a frame's count takes from the head model: where the people only a head showed stand, and the heads
    found (None before the model's first run has ended)."""

    unboxed_feet: np.ndarray  # (M, 2) float32
    heads: int | None

    @staticmethod
    def none() -> HeadCount:
        return HeadCount(NO_FEET, None)


class CrowdSchedule:
    """The head model's runs over one source's frames, in order; `close` when the footage ends."""

    def __init__(self, finder: FindsHeads, config: HeadConfig, in_background: bool = False) -> None:
        self.finder = finder
        self.config = config
        self.last = HeadCount.none()
        self.ran_at: float | None = None
        self.pool = ThreadPoolExecutor(1, "heads") if in_background else None
        self.pending: Future[HeadCount] | None = None

    def __call__(self, frame: Frame, image: np.ndarray, people: Detections, walkable: np.ndarray | None) -> HeadCount:
        """The head count for `frame` (its `image` as the detector saw it, the people it found on `walkable`)."""
        if self.pending is not None and self.pending.done():
            self.last, self.pending = self.pending.result(), None
        due = self.ran_at is None or not 0 <= frame.t - self.ran_at < self.config.every_s
        if not (due or stands_alone(frame)):
            return self.last
        if self.pool is None:
            self.last = self.run(image, people, walkable)
        elif self.pending is None:
            self.pending = self.pool.submit(self.run, image, people, walkable)
        self.ran_at = frame.t
        return self.last

    def run(self, image: np.ndarray, people: Detections, walkable: np.ndarray | None) -> HeadCount:
        crowd = fuse(people, self.finder(image, people), walkable, self.config)
        return HeadCount(crowd.unboxed_feet, len(crowd.heads))

    def close(self) -> None:
        """The footage ended: a run still going is not waited for, and none starts."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
