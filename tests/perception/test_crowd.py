"""The count fusion: detected people, plus the heads none of them accounts for, with exact numbers."""

from __future__ import annotations

import numpy as np

from sanitary.perception.boxes import Detections
from sanitary.perception.crowd import feet_below, fuse, height_at, unaccounted
from sanitary.perception.heads import Heads


def people(*boxes: tuple[float, float, float, float]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def heads(*points: tuple[float, float]) -> Heads:
    return Heads(
        np.array(points, np.float32).reshape(-1, 2),
        np.ones(len(points), np.float32),
        np.full(len(points), 10, np.float32),
    )


def test_a_head_in_a_box_head_place_is_that_person() -> None:
    # Box 100 px tall, 40 wide: head place (120, 10), reach 24 px across and 20 px down or up.
    box = people((100, 0, 140, 100))
    assert unaccounted(box, heads((120, 10))).tolist() == []
    assert unaccounted(box, heads((143, 29))).tolist() == []  # within reach on both axes
    assert unaccounted(box, heads((145, 10))).tolist() == [0]  # 25 px across: another person beside
    assert unaccounted(box, heads((120, 31))).tolist() == [0]  # 21 px down: a child in front, say


def test_each_person_accounts_for_one_head_the_nearest_first() -> None:
    # Two heads in one box's reach: the nearer one is the person, the other is someone behind.
    box = people((100, 0, 140, 100))
    assert unaccounted(box, heads((130, 18), (121, 11))).tolist() == [0]
    # Two people side by side, heads each in both reaches: matched nearest pair first, nobody left over.
    pair = people((100, 0, 140, 100), (120, 0, 160, 100))
    assert unaccounted(pair, heads((140, 10), (121, 9))).tolist() == []


def test_nobody_detected_leaves_every_head_and_no_head_leaves_none() -> None:
    assert unaccounted(people(), heads((1, 2), (3, 4))).tolist() == [0, 1]
    assert unaccounted(people((0, 0, 10, 10)), Heads.none()).tolist() == []


def test_height_follows_the_detected_people_linearly_in_the_image_row() -> None:
    # Heights 50, 100, 150 with head rows 5, 60, 115: height = 50 + (row - 5) * 50 / 55.
    crowd = people((0, 0, 20, 50), (0, 50, 40, 150), (0, 100, 60, 250))
    assert np.allclose(height_at(crowd, np.array([5.0, 60.0, 115.0])), [50, 100, 150])
    assert np.allclose(height_at(crowd, np.array([170.0])), [200])
    assert np.allclose(height_at(crowd, np.array([500.0])), [300])  # at most twice the largest seen
    assert np.allclose(height_at(crowd, np.array([-200.0])), [25])  # at least half the smallest
    # Two people (no line from two points of noisy boxes): their median height.
    assert np.allclose(height_at(people((0, 0, 20, 50), (0, 50, 40, 150)), np.array([7.0])), [75])
    # Nearer people smaller is not perspective (sitting, cut boxes): the median.
    shrinking = people((0, 0, 20, 150), (0, 50, 40, 150), (0, 100, 60, 150))
    assert np.allclose(height_at(shrinking, np.array([0.0])), [100])
    assert height_at(people(), np.array([1.0])) is None


def test_feet_stand_nine_tenths_of_a_height_below_the_head() -> None:
    crowd = people((0, 0, 20, 50), (0, 50, 40, 150), (0, 100, 60, 250))
    assert feet_below(crowd, np.array([[30.0, 60.0]], np.float32)).tolist() == [[30.0, 150.0]]
    assert feet_below(people(), np.array([[30.0, 60.0]], np.float32)).tolist() == [[30.0, 60.0]]


def test_fuse_counts_unboxed_heads_standing_on_the_walkable_area() -> None:
    crowd = people((0, 0, 20, 50), (0, 50, 40, 150), (0, 100, 60, 250))
    found = heads((10, 5), (200, 60), (300, 5))  # the first is person 0; feet at y 150 and y 45
    walkable = np.array([[0, 100], [400, 100], [400, 300], [0, 300]], np.float32)
    fused = fuse(crowd, found, walkable, 0.5)
    assert (fused.count, fused.unboxed.tolist(), fused.unboxed_feet.tolist()) == (4, [1], [[200.0, 150.0]])
    everywhere = fuse(crowd, found, None, 0.5)
    assert (everywhere.count, everywhere.unboxed.tolist()) == (5, [1, 2])


def test_a_head_without_a_body_needs_the_higher_score_a_head_with_one_does_not() -> None:
    crowd = people((0, 0, 20, 50), (0, 50, 40, 150), (0, 100, 60, 250))
    found = Heads(
        np.array([[10, 5], [200, 60], [300, 5]], np.float32),
        np.array([0.2, 0.3, 0.29], np.float32),
        np.full(3, 10, np.float32),
    )
    fused = fuse(crowd, found, None, 0.3)
    assert (fused.count, fused.unboxed.tolist()) == (4, [1])  # the 0.2 head still confirms person 0
