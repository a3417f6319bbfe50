"""When a face's mask is read, and the reading a tracked person's face carries between two readings.

A reading costs the classifier a few milliseconds a face on 2 cores, so reading every face of a crowd every frame
costs more than finding the people; and mask wearing does not change from frame to frame. A tracked person's face is
read every frame until it gave `min_readings` confident readings (what the person's vote needs, so that a vote never
rests on one reading copied), then once in each period of `every_s`; the frames between carry the last reading,
confident or not, so that each frame's counts stay a fair sample of what reading every face would give. A reading
unlike the one before it is not carried (the face is read again on the next frame): a one-frame slip of the
classifier then counts on its own frame only, as it would if every face were read every frame, rather than for a
whole period. Each track's periods start at its own phase (from its id), so that people who came into view together
are not all read again on the same frame: the readings of a crowd spread evenly over the frames, with no frame late
for them. Whether a face shows enough to be read (its size, how far it is turned) is judged on each frame's own
face, carried or not. Faces of nobody tracked are read every frame. Readings live in memory only, while their track
lives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sanitary.config import MaskConfig
from sanitary.perception.faces import Faces
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.masks import MaskReadings, nose_offset, unreadable

# Spreads the tracks' phases evenly whatever their ids (the fractional parts of multiples of the golden ratio).
PHASE_STEP = (5**0.5 - 1) / 2


class ReadsMasks(Protocol):
    def __call__(self, image: np.ndarray, faces: Faces) -> MaskReadings: ...


@dataclass
class _Last:
    t: float  # when the reading was made
    mask: int  # its MaskClass value
    confidence: float
    confident: int  # confident readings of this person so far
    agreed: bool  # the reading before it read the same: not a one-frame slip of the classifier


class MaskSchedule:
    """Mask readings for one source's frames, in order; `end` the tracks that ended."""

    def __init__(self, reader: ReadsMasks, thresholds: MaskConfig, min_readings: int) -> None:
        self.reader = reader
        self.thresholds = thresholds
        self.min_readings = min_readings
        self.last: dict[int, _Last] = {}

    def __call__(self, image: np.ndarray, t: float, faces: Faces, tracks: np.ndarray) -> MaskReadings:
        """Each face's reading at time `t`; `tracks` (F,) is the track id of each face's person, -1 for none."""
        readable = ~unreadable(faces.boxes, self.thresholds, nose_offset(faces.landmarks))
        carried = np.flatnonzero(readable & np.array([self._carries(int(track), t) for track in tracks], bool))
        read = np.setdiff1d(np.arange(len(faces)), carried)
        # The reader judges the faces it is given as it always does (one too side-on is unknown, unread).
        fresh = self.reader(image, faces.take(read))
        classes = np.empty(len(faces), np.int64)
        confidence = np.empty(len(faces), np.float32)
        classes[read], confidence[read] = fresh.classes, fresh.confidence
        classes[carried] = [self.last[int(tracks[i])].mask for i in carried]
        confidence[carried] = [self.last[int(tracks[i])].confidence for i in carried]
        for i in read[readable[read]]:
            self._keep(int(tracks[i]), t, int(classes[i]), float(confidence[i]))
        return MaskReadings(classes, confidence)

    def _carries(self, track: int, t: float) -> bool:
        """Whether the track's last reading stands for its face at `t`: made in the same period of the track's."""
        last = self.last.get(track)
        return (
            last is not None
            and last.confident >= self.min_readings
            and last.agreed
            and self.thresholds.every_s > 0
            and last.t <= t  # a seek back: a reading is never carried into the past
            and self._period(track, t) == self._period(track, last.t)
        )

    def _period(self, track: int, t: float) -> int:
        return track_period(track, t, self.thresholds.every_s)

    def _keep(self, track: int, t: float, mask: int, confidence: float) -> None:
        if track < 0:  # nobody tracked: nothing to carry it to
            return
        before = self.last.get(track)
        confident = (before.confident if before else 0) + (mask != MaskClass.UNKNOWN)
        self.last[track] = _Last(t, mask, confidence, confident, before is not None and before.mask == mask)

    def end(self, tracks: tuple[int, ...]) -> None:
        """Tracks that ended: their readings are forgotten."""
        for track in tracks:
            self.last.pop(track, None)


def track_period(track: int, t: float, period_s: float) -> int:
    """Which of the track's periods of `period_s` holds `t`: the periods start at the track's own phase."""
    return math.floor(t / period_s + track * PHASE_STEP % 1)
