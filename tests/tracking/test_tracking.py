"""Tracker and person ledger: exact numbers on synthetic scenes; nothing here keeps an image or an id."""

from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import PersonEvents, aggregate
from sanitary.config import TrackingConfig
from sanitary.perception.boxes import Detections
from sanitary.perception.mask_classes import MaskClass
from sanitary.tracking.ledger import Contact, Crossing, PersonLedger, PersonSummary, crosses, vote
from sanitary.tracking.tracker import (
    APPEARANCE_BUDGET,
    PeopleTracker,
    Sighting,
    appearance,
    clip_to_frame,
    reachable,
    taken_up,
)

RED, BLUE = (0, 0, 255), (255, 0, 0)


def scene(boxes: list[tuple[int, int, int, int]], colours: list[tuple[int, int, int]]) -> np.ndarray:
    image = np.full((240, 320, 3), 128, np.uint8)
    for (x1, y1, x2, y2), colour in zip(boxes, colours, strict=True):
        image[y1:y2, x1:x2] = colour
    return image


def detections(boxes: list[tuple[float, float, float, float]], score: float = 0.9) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), score, np.float32))


def test_a_box_wholly_outside_the_frame_is_dropped() -> None:
    people = detections([(10, 10, 50, 100), (400, 10, 450, 100), (-30, 20, 20, 90)])
    inside, kept = clip_to_frame(people, 320, 240)
    assert kept.tolist() == [0, 2]
    assert inside.boxes[1].tolist() == [0, 20, 20, 90]


def test_appearance_tells_colours_apart() -> None:
    image = scene([(10, 10, 50, 100), (100, 10, 140, 100)], [RED, BLUE])
    f = appearance(image, np.array([[10, 10, 50, 100], [100, 10, 140, 100], [12, 12, 48, 98]], np.float32))
    assert np.linalg.norm(f, axis=1) == pytest.approx([1, 1, 1])
    assert f[0] @ f[2] > 0.99 and f[0] @ f[1] < 0.1


def test_appearance_is_the_whole_frames_hsv_histograms_of_each_core_half() -> None:
    """The features to the bit: overlapping boxes, odd core heights, a box at the frame's edge and one too thin
    to have a core."""
    image = np.random.default_rng(7).integers(0, 256, (240, 320, 3), np.uint8)
    boxes = np.array(
        [[10, 10, 50, 100], [30, 40, 90, 171], [0, 0, 13, 37], [250.4, 100.6, 320, 240], [5, 5, 6, 200]], np.float32
    )
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    expected = []
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        cx1, cy1, cx2, cy2 = np.round([x1 + 0.25 * w, y1 + 0.1 * h, x2 - 0.25 * w, y2 - 0.1 * h]).astype(int)
        middle = (cy1 + cy2) // 2
        halves = [hsv[cy1:middle, cx1:cx2], hsv[middle:cy2, cx1:cx2]]
        vector = np.concatenate(
            [
                cv2.calcHist([half], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel() if half.size else np.zeros(32)
                for half in halves
            ]
        ).astype(np.float32)
        norm = np.linalg.norm(vector)
        expected.append(vector / norm if norm else vector)
    assert np.array_equal(appearance(image, boxes), np.array(expected, np.float32))


def test_two_people_keep_their_ids_and_an_outside_box_does_not_crash() -> None:
    tracker = PeopleTracker(TrackingConfig(confirm_frames=2, max_lost_s=1.0), analysed_fps=5)
    seen = []
    for step in range(8):
        a = (10 + 5 * step, 20, 50 + 5 * step, 120)
        b = (250 - 5 * step, 30, 290 - 5 * step, 130)
        image = scene([a, b], [RED, BLUE])
        tracks = tracker(image, detections([a, b, (500, 10, 560, 90)]))
        seen.append(dict(zip(tracks.detection.tolist(), tracks.ids.tolist(), strict=True)))
    assert seen[0] == {}  # not confirmed yet
    assert len({s[0] for s in seen[2:]}) == 1 and len({s[1] for s in seen[2:]}) == 1
    assert seen[-1][0] != seen[-1][1]
    # Both walk out of view: after max_lost_s their tracks end.
    ended: set[int] = set()
    for _ in range(8):
        ended |= set(tracker(scene([], []), detections([])).ended)
    assert ended == set(seen[-1].values())


def test_a_track_keeps_only_its_latest_appearances() -> None:
    """A seated passenger stays in view for the whole trip: what their track holds, and each frame's matching cost,
    stay bounded (DeepSORT's own budget of 100 samples; on PETS IDF1 0.803 -> 0.898, recent looks matching best)."""
    tracker = PeopleTracker(TrackingConfig(confirm_frames=2), analysed_fps=5)
    a = (100, 20, 140, 120)
    for _ in range(APPEARANCE_BUDGET + 30):
        tracks = tracker(scene([a], [RED]), detections([a]))
    held = tracker.tracker.tracker.metric.samples
    assert len(tracks.ids) == 1 and [len(v) for v in held.values()] == [APPEARANCE_BUDGET]


def test_a_doubtful_detection_continues_a_track_but_never_starts_one() -> None:
    tracker = PeopleTracker(TrackingConfig(confirm_frames=2, start_score=0.6), analysed_fps=5)
    bollard = (200, 40, 230, 120)
    person = [(10 + 5 * step, 20, 50 + 5 * step, 120) for step in range(10)]
    ids = []
    for step in range(10):
        image = scene([person[step], bollard], [RED, BLUE])
        people = Detections(
            np.array([person[step], bollard], np.float32), np.array([0.9 if step < 3 else 0.3, 0.3], np.float32)
        )
        tracks = tracker(image, people)
        ids.append(dict(zip(tracks.detection.tolist(), tracks.ids.tolist(), strict=True)))
    assert all(1 not in frame for frame in ids)  # the bollard, at 0.3 throughout: never a track
    assert ids[0] == {} and len({frame[0] for frame in ids[1:]}) == 1  # the person, at 0.3 from the 4th frame on


def test_reachable_at_walking_speed_in_the_persons_own_heights() -> None:
    last = np.array([100.0, 100.0, 120.0, 200.0])  # 100 px tall: half a height (50 px) at once, 170 px in 1 s
    assert reachable(last, np.array([149.0, 100.0, 169.0, 200.0]), 0.0)
    assert not reachable(last, np.array([151.0, 100.0, 171.0, 200.0]), 0.0)
    assert reachable(last, np.array([100.0, 269.0, 120.0, 369.0]), 1.0)
    assert not reachable(last, np.array([100.0, 271.0, 120.0, 371.0]), 1.0)
    assert reachable(last, np.array([140.0, 120.0, 160.0, 220.0]), 0.0)  # feet 44.7 px apart


def test_a_new_track_is_the_one_lost_person_who_could_have_walked_there() -> None:
    def box(x: float) -> np.ndarray:  # 100 px tall, feet at x + 10
        return np.array([x, 100.0, x + 20, 200.0])

    near, far = Sighting(10, box(130), False), Sighting(10, box(400), False)
    first = Sighting(12, box(160), False)
    assert taken_up(first, {1: near, 2: far}, fps=5) == 1
    assert taken_up(first, {1: near, 2: far, 3: Sighting(11, box(100), False)}, fps=5) is None  # two could: nobody
    assert taken_up(first, {1: Sighting(12, near.box, False)}, fps=5) is None  # seen at the same time: another
    assert taken_up(first, {1: Sighting(10, near.box, True)}, fps=5) is None  # walked out of view
    assert taken_up(Sighting(12, first.box, True), {1: Sighting(10, near.box, True)}, fps=5) == 1  # and back in


@pytest.mark.parametrize(("back_at", "same"), [(60, True), (200, False)])
def test_a_person_hidden_for_a_second_keeps_their_id_where_they_could_have_walked(back_at: int, same: bool) -> None:
    """Hidden for five frames, they come back in other colours (half behind a sign): DeepSort starts a new track."""
    tracker = PeopleTracker(TrackingConfig(confirm_frames=3, max_lost_s=2.0), analysed_fps=5)
    ids, ended = [], []
    for step in range(16):
        box = (
            (10 + 5 * step, 20, 50 + 5 * step, 120)
            if step < 6
            else (back_at + 5 * step, 20, back_at + 40 + 5 * step, 120)
        )
        shown = [] if 6 <= step < 11 else [box]
        tracks = tracker(scene(shown, [RED if step < 6 else BLUE] * len(shown)), detections(shown))
        ids.append(tracks.ids.tolist())
        ended.extend(tracks.ended)
    assert ids[2:6] == [[1]] * 4 and ids[6:13] == [[]] * 7
    assert ids[13:] == [[1 if same else 2]] * 3
    assert ended == [] and tracker.finish() == ((1,) if same else (1, 2))  # taken up: their old track is gone


def test_vote_needs_enough_frames_and_a_clear_winner() -> None:
    assert vote(np.array([3, 1, 0]), 2) == 0
    assert vote(np.array([1, 0, 0]), 2) == MaskClass.UNKNOWN
    assert vote(np.array([2, 2, 0]), 2) == MaskClass.UNKNOWN


def test_line_crossings_directions_and_ends() -> None:
    a, b = np.array([0.0, 0.0]), np.array([0.0, 10.0])  # a vertical door, walked from a (top) to b (bottom)
    assert crosses(a, b, np.array([1.0, 5.0]), np.array([-1.0, 5.0])) is True
    assert crosses(a, b, np.array([-1.0, 5.0]), np.array([1.0, 5.0])) is False
    assert crosses(a, b, np.array([1.0, 15.0]), np.array([-1.0, 15.0])) is None  # past the end of the door
    assert crosses(a, b, np.array([1.0, 5.0]), np.array([2.0, 5.0])) is None


def test_ledger_summaries_crossings_and_contacts() -> None:
    line = [(np.array([100.0, 0.0]), np.array([100.0, 200.0]))]
    ledger = PersonLedger(line, min_mask_frames=2, contact_s=1.0)
    for i in range(6):
        t = i * 0.5
        ids = np.array([7, 9])
        masks = np.array([0 if i % 2 == 0 else MaskClass.UNKNOWN, 1])
        points = [np.array([[90.0 + 4 * i, 50.0], [150.0, 60.0]])]  # 7 walks across x = 100 at i = 3
        ledger.update(t, ids, masks, points, {(7, 9)} if i < 4 else set())
    ledger.end((7, 9, 11))
    assert ledger.crossings == [Crossing(0, False, 1.5)]  # moving right across a line drawn downwards: out
    assert ledger.contacts == [Contact(0.0, 1.5)]
    assert sorted((p.mask, p.mask_frames, p.first_t, p.last_t) for p in ledger.people) == [
        (0, 3, 0.0, 2.5),
        (1, 6, 0.0, 2.5),
    ]
    assert ledger.records == {} and ledger.pairs == {}


def test_people_per_window_exact() -> None:
    t0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    people = [
        PersonSummary(5.0, 50.0, (5.0, 50.0), 0, 4),  # in window 0 only, stays 45 s
        PersonSummary(55.0, 70.0, (55.0, 70.0), 1, 3),  # spans windows 0 and 1, ends in 1 after 15 s
        PersonSummary(61.0, 62.0, (61.0, 62.0), MaskClass.UNKNOWN, 0),  # window 1, 1 s
    ]
    events = PersonEvents([Crossing(0, True, 10.0), Crossing(0, False, 65.0)], [Contact(58.0, 61.0)], ("door",))
    obs = [Observation(i, float(i), 1, MaskCounts(), tracks=1) for i in range(0, 90, 10)]
    w0, w1 = aggregate(
        obs, site_id="s", camera_id="c", source="h", start=t0, duration_s=90.0, window_s=60,
        confusion=np.diag([9, 9, 9]), people=people, events=events, dwell_bins_s=(10.0, 30.0),
    )  # fmt: skip
    assert w0.persons is not None and w1.persons is not None
    assert (w0.persons.people_distinct, w1.persons.people_distinct) == (2, 2)
    assert w0.persons.masks == MaskCounts(1, 1, 0, 0)
    assert w1.persons.masks == MaskCounts(0, 1, 0, 1)
    assert w0.persons.dwell_counts == (0, 0, 1) and w1.persons.dwell_counts == (1, 1, 0)
    assert (w0.persons.close_contacts, w1.persons.close_contacts) == (1, 1)
    assert [(x.people_in, x.people_out) for x in (*w0.lines, *w1.lines)] == [(1, 0), (0, 1)]
