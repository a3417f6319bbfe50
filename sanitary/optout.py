"""The head-shake opt-out, honoured: a person who shakes their head "no" is left out of every aggregate of the
open window and, for the rest of their track, of everything after.

To take someone out of frames already analysed, the open window's frames are kept as the stages saw them (boxes,
track ids, mask readings), in memory only, and dropped when the window closes; an opted-out person's frames are
then counted again without them. Nothing says who opted out: a track id lives in this process only, and once the
track ends nobody is recognised again (a person who walks out of view and back in is a new track).
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass

import numpy as np

from sanitary.analytics import MaskCounts, Observation
from sanitary.config import OptOutConfig
from sanitary.distancing import FrameDistancing
from sanitary.headshake import ShakeDetector
from sanitary.perception.masks import UNKNOWN
from sanitary.perception.people import Detections


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame as the stages saw it; lives only while its window is open."""

    frame: int
    t: float
    people: Detections
    track: np.ndarray  # (N,) int64: each person's track id, -1 where untracked (or tracking is off)
    face_owner: np.ndarray  # (F,) int64: the person each face reading belongs to, -1 for none
    face_class: np.ndarray  # (F,) int64: each face's mask reading, or UNKNOWN
    ground: FrameDistancing  # measured over all the frame's people
    tracked: bool


def observe_frame(
    record: FrameRecord, excluded: Set[int], measure: Callable[[Detections], FrameDistancing]
) -> Observation:
    """The frame's counts without the people whose track is in `excluded` (their faces and distances too)."""
    out = np.isin(record.track, np.fromiter(excluded, np.int64, len(excluded))) & (record.track >= 0)
    keep = ~out
    people, ground = record.people, record.ground
    if out.any():
        people = Detections(people.boxes[keep], people.scores[keep])
        ground = measure(people)
    owned = record.face_owner >= 0
    faces_kept = ~owned | keep[np.where(owned, record.face_owner, 0)]
    c = record.face_class[faces_kept]
    masks = MaskCounts(int((c == 0).sum()), int((c == 1).sum()), int((c == 2).sum()), int((c == UNKNOWN).sum()))
    tracks = int((keep & (record.track >= 0)).sum()) if record.tracked else None
    return Observation(record.frame, record.t, len(people), masks, ground, tracks)


class OptOutWatch:
    """A shake detector per live track; the tracks that opted out, until they end."""

    def __init__(self, config: OptOutConfig) -> None:
        self.config = config
        self.detectors: dict[int, ShakeDetector] = {}
        self.excluded: set[int] = set()

    def update(self, t: float, tracks: np.ndarray, yaw_deg: np.ndarray) -> list[int]:
        """Feed each tracked person's yaw this frame (NaN: no face read); the tracks that just shook their head."""
        shook = []
        for track, yaw in zip(tracks.tolist(), yaw_deg.tolist(), strict=True):
            if track in self.excluded:
                continue
            detector = self.detectors.setdefault(track, ShakeDetector(self.config))
            if detector.update(t, yaw):
                self.excluded.add(track)
                shook.append(track)
        return shook

    def end(self, tracks: tuple[int, ...]) -> None:
        for track in tracks:
            self.detectors.pop(track, None)
            self.excluded.discard(track)
