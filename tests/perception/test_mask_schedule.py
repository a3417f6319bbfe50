"""When faces are read for masks: a scripted reader records which faces it was given; every reading is checked."""

from __future__ import annotations

import numpy as np

from sanitary.config import MaskConfig
from sanitary.perception.faces import Faces
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.mask_schedule import MaskSchedule
from sanitary.perception.masks import MaskReadings, nose_offset, unreadable

IMAGE = np.zeros((100, 200, 3), np.uint8)
WITH, WITHOUT, UNKNOWN = MaskClass.WITH_MASK, MaskClass.WITHOUT_MASK, MaskClass.UNKNOWN
FRONTAL = np.array([[0, 0], [10, 0], [5, 5], [2, 10], [8, 10]], np.float32)
SIDE_ON = np.array([[0, 0], [10, 0], [14, 5], [2, 10], [8, 10]], np.float32)  # nose 0.9 eye distances aside


class Reader:
    """Reads each face given as the mask scripted for its person (UNKNOWN: not sure enough), a face too small or
    side-on as unknown (as the classifier does), and notes whose faces it was given."""

    def __init__(self, masks: dict[int, int], thresholds: MaskConfig) -> None:
        self.masks = masks
        self.thresholds = thresholds
        self.asked: list[list[int]] = []

    def __call__(self, image: np.ndarray, faces: Faces) -> MaskReadings:
        self.asked.append(faces.person.tolist())
        classes = np.array([self.masks[p] for p in faces.person.tolist()], np.int64)
        classes[unreadable(faces.boxes, self.thresholds, nose_offset(faces.landmarks))] = UNKNOWN
        return MaskReadings(classes, np.where(classes == UNKNOWN, 0.4, 0.9).astype(np.float32))


def schedule_of(masks: dict[int, int], thresholds: MaskConfig, min_readings: int) -> tuple[MaskSchedule, Reader]:
    reader = Reader(masks, thresholds)
    return MaskSchedule(reader, thresholds, min_readings), reader


def faces(people: list[int], side_on: tuple[int, ...] = (), side: float = 20.0) -> Faces:
    """One face per person, 60 px apart; those in `side_on` turned too far to be read."""
    boxes = np.array([[60 * p, 0, 60 * p + side, side] for p in people], np.float32).reshape(-1, 4)
    marks = np.array([(SIDE_ON if p in side_on else FRONTAL) + [60 * p, 0] for p in people], np.float32)
    return Faces(boxes, np.ones(len(people), np.float32), marks.reshape(-1, 5, 2), np.array(people, np.int64))


def run(schedule: MaskSchedule, frames: list[tuple[float, Faces, list[int]]]) -> list[list[int]]:
    return [schedule(IMAGE, t, f, np.array(tracks, np.int64)).classes.tolist() for t, f, tracks in frames]


def test_a_tracked_face_is_read_until_its_vote_can_count_then_once_every_every_s() -> None:
    """10 frames a second, masks.every_s 0.5, two confident readings needed: read at 0 and 0.1 s, then once in
    each of the track's half-second periods, which for track 7 start at 0.337 s, 0.837 s... (its phase, 0.326 of
    a period, is the fractional part of 7 times the golden ratio's 0.618); the frames between carry the last
    reading."""
    schedule, reader = schedule_of({0: WITH}, MaskConfig(every_s=0.5), 2)
    classes = run(schedule, [(i / 10, faces([0]), [7]) for i in range(12)])
    assert classes == [[WITH]] * 12
    assert reader.asked == [[0], [0], [], [], [0], [], [], [], [], [0], [], []]


def test_readings_not_sure_enough_are_carried_but_do_not_count_towards_the_vote() -> None:
    """Person 1 is read unsure (unknown) at first: read every frame until two confident readings (1.0 and 1.5 s),
    then once a second; an unsure reading made then (3.5 s) is read again (4.0 s) and, read the same, would be
    carried like any other, so that the frames' counts keep the unsure share."""
    schedule, reader = schedule_of({1: UNKNOWN}, MaskConfig(every_s=1.0), 2)
    frame = faces([1])
    classes = run(schedule, [(0.0, frame, [3]), (0.5, frame, [3])])
    reader.masks[1] = WITHOUT
    classes += run(schedule, [(1.0, frame, [3]), (1.5, frame, [3]), (2.0, frame, [3]), (2.5, frame, [3])])
    reader.masks[1] = UNKNOWN
    classes += run(schedule, [(3.0, frame, [3]), (3.5, frame, [3]), (4.0, frame, [3])])
    assert classes == [[UNKNOWN], [UNKNOWN]] + [[WITHOUT]] * 5 + [[UNKNOWN]] * 2
    assert reader.asked == [[1], [1], [1], [1], [], [1], [], [1], [1]]


def test_a_reading_unlike_the_one_before_is_not_carried() -> None:
    """A one-frame slip (read incorrect once among without) counts on its own frame only, as reading every frame
    would count it: it is read again on the next frame, and carried only once two readings in a row agree."""
    schedule, reader = schedule_of({0: WITHOUT}, MaskConfig(every_s=0.5), 1)
    frame = faces([0])
    # Track 5's half-second periods start at 0.455 s (its phase: 0.09 of a period).
    classes = run(schedule, [(t, frame, [5]) for t in (0.0, 0.1, 0.2, 0.3, 0.4)])
    reader.masks[0] = MaskClass.INCORRECT
    classes += run(schedule, [(0.5, frame, [5])])
    reader.masks[0] = WITHOUT
    classes += run(schedule, [(t, frame, [5]) for t in (0.6, 0.7, 0.8)])
    assert classes == [[WITHOUT]] * 5 + [[MaskClass.INCORRECT]] + [[WITHOUT]] * 3
    assert reader.asked == [[0], [0], [], [], [], [0], [0], [0], []]


def test_faces_of_nobody_tracked_are_read_every_frame() -> None:
    schedule, reader = schedule_of({0: WITH, 1: WITHOUT}, MaskConfig(every_s=10.0), 1)
    classes = run(schedule, [(i / 10, faces([0, 1]), [-1, 4]) for i in range(3)])
    assert classes == [[WITH, WITHOUT]] * 3
    assert reader.asked == [[0, 1], [0, 1], [0]]


def test_a_carried_reading_is_unknown_on_a_frame_where_the_face_is_too_side_on_or_too_small() -> None:
    schedule, reader = schedule_of({0: WITH}, MaskConfig(every_s=10.0, min_face_px=8.0), 1)
    frames = [(0.0, faces([0]), [2]), (0.1, faces([0]), [2]), (0.2, faces([0], side_on=(0,)), [2])]
    frames += [(0.3, faces([0], side=6.0), [2]), (0.4, faces([0]), [2])]
    assert run(schedule, frames) == [[WITH], [WITH], [UNKNOWN], [UNKNOWN], [WITH]]
    # The side-on and small faces went to the reader, which judges them as it always does, but no reading of
    # theirs replaced the frontal face's.
    assert reader.asked == [[0], [0], [0], [0], []]


def test_a_face_not_readable_when_first_seen_leaves_nothing_to_carry() -> None:
    schedule, reader = schedule_of({0: WITH}, MaskConfig(every_s=10.0), 1)
    frames = [(0.0, faces([0], side_on=(0,)), [2]), (0.1, faces([0]), [2]), (0.2, faces([0]), [2])]
    run(schedule, [*frames, (0.3, faces([0]), [2])])
    assert reader.asked == [[0], [0], [0], []]


def test_every_s_zero_reads_every_face_every_frame() -> None:
    schedule, reader = schedule_of({0: WITH, 1: WITHOUT}, MaskConfig(every_s=0.0), 1)
    run(schedule, [(i / 10, faces([0, 1]), [1, 2]) for i in range(4)])
    assert reader.asked == [[0, 1]] * 4


def test_an_ended_track_and_a_seek_back_are_read_afresh() -> None:
    schedule, reader = schedule_of({0: WITH}, MaskConfig(every_s=10.0), 1)
    run(schedule, [(5.0, faces([0]), [9]), (5.1, faces([0]), [9]), (5.2, faces([0]), [9])])
    run(schedule, [(4.0, faces([0]), [9])])  # earlier than the reading: never carried into the past
    schedule.end((9,))
    run(schedule, [(4.1, faces([0]), [9])])
    assert reader.asked == [[0], [0], [], [0], [0]]
    assert schedule.last.keys() == {9}
    schedule.end((9,))
    assert not schedule.last
