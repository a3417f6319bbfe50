"""Tracker and person ledger: exact numbers on synthetic scenes; nothing here keeps an image or an id."""

from datetime import UTC, datetime

import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import PersonEvents, aggregate
from sanitary.config import TrackingConfig
from sanitary.perception.boxes import Detections
from sanitary.perception.mask_classes import MaskClass
from sanitary.tracking.ledger import Contact, Crossing, PersonLedger, PersonSummary, crosses, vote
from sanitary.tracking.tracker import PeopleTracker, appearance, clip_to_frame

RED, BLUE = (0, 0, 255), (255, 0, 0)


def scene(boxes: list[tuple[int, int, int, int]], colours: list[tuple[int, int, int]]) -> np.ndarray:
    image = np.full((240, 320, 3), 128, np.uint8)
    for (x1, y1, x2, y2), colour in zip(boxes, colours, strict=True):
        image[y1:y2, x1:x2] = colour
    return image


def detections(boxes: list[tuple[float, float, float, float]]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))


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
