"""What one analysed frame showed, as counts: the step from what the stages saw (boxes, track ids, readings) to
an `Observation` that holds no one. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass, field

import numpy as np

from sanitary.geometry.distancing import FrameDistancing
from sanitary.perception.boxes import Detections
from sanitary.perception.mask_classes import MaskClass

NOT_MEASURED = FrameDistancing(0, 0, (), (), measured=False)


@dataclass(frozen=True)
class MaskCounts:
    """Faces by how the mask classifier read them; `unknown` is never folded into either side of a rate."""

    with_mask: int = 0
    without_mask: int = 0
    incorrect: int = 0
    unknown: int = 0

    def __add__(self, other: MaskCounts) -> MaskCounts:
        return MaskCounts(
            self.with_mask + other.with_mask,
            self.without_mask + other.without_mask,
            self.incorrect + other.incorrect,
            self.unknown + other.unknown,
        )

    @staticmethod
    def of(classes: np.ndarray) -> MaskCounts:
        """The counts of an array of `MaskClass` values."""
        return MaskCounts(
            with_mask=int((classes == MaskClass.WITH_MASK).sum()),
            without_mask=int((classes == MaskClass.WITHOUT_MASK).sum()),
            incorrect=int((classes == MaskClass.INCORRECT).sum()),
            unknown=int((classes == MaskClass.UNKNOWN).sum()),
        )

    @property
    def classified(self) -> tuple[int, int, int]:
        return self.with_mask, self.without_mask, self.incorrect

    @property
    def total(self) -> int:
        return sum(self.classified) + self.unknown


@dataclass(frozen=True)
class Observation:
    """What one analysed frame showed, stripped of who: counts only."""

    frame: int  # 0-based index in the source
    t: float  # seconds since the start of the source
    people: int
    masks: MaskCounts
    ground: FrameDistancing = NOT_MEASURED
    tracks: int | None = None  # people tracked in this frame; None with tracking off
    # `people` is the best estimate: the people detected whole, plus the heads none of them accounts for.
    detected: int | None = None  # people the person detector found; None where not known apart
    heads: int | None = None  # heads the head model found; None without a head model

    @property
    def faces(self) -> int:
        return self.masks.total


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame as the stages saw it; lives only while its window is open."""

    frame: int
    t: float
    people: Detections
    track: np.ndarray  # (N,) int64: each person's track id, -1 where untracked (or tracking is off)
    face_owner: np.ndarray  # (F,) int64: the person each face reading belongs to, -1 for none
    face_class: np.ndarray  # (F,) int64: each face's mask reading, a MaskClass value
    ground: FrameDistancing  # measured over all the frame's people
    tracked: bool
    # Where the people only a head showed stand (perception/crowd.py), (M, 2); no track, no face: nobody to
    # take out after an opt-out.
    unboxed_feet: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    heads: int | None = None  # heads found; None without a head model


def observe_frame(
    record: FrameRecord, excluded: Set[int], measure: Callable[[Detections, np.ndarray], FrameDistancing]
) -> Observation:
    """The frame's counts without the people whose track is in `excluded` (their faces and distances too)."""
    out = np.isin(record.track, np.fromiter(excluded, np.int64, len(excluded))) & (record.track >= 0)
    keep = ~out
    people, ground = record.people, record.ground
    if out.any():
        people = Detections(people.boxes[keep], people.scores[keep])
        ground = measure(people, record.unboxed_feet)
    owned = record.face_owner >= 0
    # A face searched over the whole frame may belong to nobody detected, in a frame where nobody was.
    faces_kept = ~owned | keep[np.where(owned, record.face_owner, 0)] if len(keep) else ~owned
    masks = MaskCounts.of(record.face_class[faces_kept])
    tracks = int((keep & (record.track >= 0)).sum()) if record.tracked else None
    people_count = len(people) + len(record.unboxed_feet)
    return Observation(record.frame, record.t, people_count, masks, ground, tracks, len(people), record.heads)
