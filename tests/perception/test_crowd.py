"""The count fusion: detected people, plus the heads none of them accounts for, with exact numbers."""

from __future__ import annotations

import numpy as np

from sanitary.config import HeadConfig
from sanitary.perception.boxes import Detections
from sanitary.perception.crowd import (
    STANDING_DEPTH,
    feet_below,
    fuse,
    ground_depth,
    is_crowd,
    owners,
    stacked,
    unaccounted,
    unboxed_min_score,
)
from sanitary.perception.heads import Heads

# A crowd from 3 heads no body accounts for making half the heads; lone heads count from 0.5, crowd heads from 0.2.
RULE = HeadConfig(min_score=0.2, unboxed_score=0.5, crowd_heads=3, crowd_share=0.5)


def people(*boxes: tuple[float, float, float, float]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def heads(*points: tuple[float, float], size: float = 10, score: float = 1) -> Heads:
    return Heads(
        np.array(points, np.float32).reshape(-1, 2),
        np.full(len(points), score, np.float32),
        np.full(len(points), size, np.float32),
    )


def test_a_head_near_the_top_of_a_box_is_that_person_in_heads_of_its_own_size() -> None:
    # Heads 10 px: head place (120, 7), reach 15 px across and 14 px up or down, whatever the box's height.
    standing, seated = people((100, 0, 140, 100)), people((100, 0, 140, 40))
    for box in (standing, seated):
        assert owners(box, heads((120, 7))).tolist() == [0]
        assert owners(box, heads((135, 21))).tolist() == [0]  # within reach on both axes
        assert owners(box, heads((136, 7))).tolist() == [-1]  # 16 px across: another person beside
        assert owners(box, heads((120, 22))).tolist() == [-1]  # 15 px down: a child in front, say
    # A seated person's box ends at the seat: their head, 15 px down, is still theirs (a standing person's
    # proportions put it at a tenth of the 40 px box, reach 8 px).
    assert owners(seated, heads((120, 15))).tolist() == [0]
    # Heads 20 px: the place and the reach grow with the head.
    assert owners(standing, heads((120, 40), size=20)).tolist() == [0]


def test_a_head_is_never_wider_than_the_box_of_its_body() -> None:
    # An 8 px wide box: a 20 px head counts as 8 px there, head place (104, 5.6), reach 11.2 px down.
    thin = people((100, 0, 108, 100))
    assert owners(thin, heads((104, 16), size=20)).tolist() == [0]
    assert owners(thin, heads((104, 17), size=20)).tolist() == [-1]


def test_each_person_accounts_for_one_head_the_nearest_first() -> None:
    # Two heads in one box's reach: the nearer one is the person, the other is someone behind.
    box = people((100, 0, 140, 100))
    two = heads((130, 18), (121, 8))
    assert (owners(box, two).tolist(), unaccounted(owners(box, two), two).tolist()) == ([1], [0])
    # Two people side by side, heads each in both reaches: matched nearest pair first, nobody left over.
    pair = people((100, 0, 140, 100), (110, 0, 150, 100))
    assert owners(pair, heads((126, 7), (124, 7))).tolist() == [1, 0]


def twins(box: Detections, found: Heads) -> list[int]:
    return np.flatnonzero(stacked(box, found, owners(box, found))).tolist()


def test_a_second_peak_between_the_box_s_top_and_its_head_may_be_the_same_person() -> None:
    # Head place (120, 7); the owned peak at (121, 12) is on the shoulders, the true head above it at (119, 2).
    box = people((100, 0, 140, 100))
    assert owners(box, heads((121, 12), (119, 2))).tolist() == [0] and twins(box, heads((121, 12), (119, 2))) == [1]
    # Half a head above the box's top still fits (y -5); a head higher than that is someone behind (y -6).
    assert twins(box, heads((121, 12), (119, -5))) == [1] and twins(box, heads((121, 12), (119, -6))) == []
    # Out of line (11 px across, heads 10 px) or below the owned head: another person.
    assert twins(box, heads((121, 12), (132, 2))) == [] and twins(box, heads((121, 8), (121, 16))) == []
    assert twins(people(), heads((121, 12))) == []


def test_second_peaks_count_in_a_crowd_and_not_elsewhere() -> None:
    box = people((100, 0, 140, 100))
    # Alone, the peak above the shoulders is the person's own head: one person.
    assert fuse(box, heads((121, 12), (119, 2)), None, RULE).count == 1
    # Among three more lone heads it is a crowd's, and someone behind: five people.
    crowd = heads((121, 12), (119, 2), (300, 5), (400, 5), (500, 5))
    assert fuse(box, crowd, None, RULE).count == 5


def test_nobody_detected_leaves_every_head_and_no_head_leaves_none() -> None:
    assert unaccounted(owners(people(), heads((1, 2), (3, 4))), heads((1, 2), (3, 4))).tolist() == [0, 1]
    assert owners(people((0, 0, 10, 10)), Heads.none()).tolist() == [-1]


def test_people_stand_as_far_below_their_heads_as_the_detected_people_show() -> None:
    # Head centres 7 px below the box tops, heads 10 px: boxes 70 px tall stand 6.3 heads below the head (standing),
    # boxes 40 px tall 3.3 (seated: cut at the seat); the median of the people with a head.
    found = heads((10, 7), (40, 7), (70, 7))
    standing = people((0, 0, 20, 70), (30, 0, 50, 70), (60, 0, 80, 40))
    seated = people((0, 0, 20, 40), (30, 0, 50, 40), (60, 0, 80, 70))
    assert np.isclose(ground_depth(standing, found, owners(standing, found)), 6.3)
    assert np.isclose(ground_depth(seated, found, owners(seated, found)), 3.3)
    # At least two heads (a box cut just below the head), and a standing person's 6.5 with nobody to measure.
    short = people((0, 0, 20, 15))
    assert ground_depth(short, found, owners(short, found)) == 2.0
    assert ground_depth(people((200, 0, 220, 70)), found, np.array([-1])) == STANDING_DEPTH == 6.5


def test_feet_stand_the_depth_in_each_head_s_own_size_below_it() -> None:
    found = Heads(np.array([[30, 60], [5, 5]], np.float32), np.ones(2, np.float32), np.array([8, 4], np.float32))
    assert feet_below(found, np.array([0, 1]), 3.25).tolist() == [[30.0, 86.0], [5.0, 18.0]]
    assert feet_below(found, np.array([], np.int64), 3.25).shape == (0, 2)


def test_a_crowd_counts_lone_heads_at_the_head_model_s_score_elsewhere_they_need_more() -> None:
    assert is_crowd(6, 3, RULE) and unboxed_min_score(True, RULE) == 0.2  # 3 lone heads of 6: a crowd
    assert not is_crowd(7, 3, RULE) and unboxed_min_score(False, RULE) == 0.5  # 3 of 7: the detector sees most
    assert not is_crowd(4, 2, RULE)  # half, but only 2: a sign and a bollard, say


def test_fuse_counts_unboxed_heads_standing_on_the_walkable_area() -> None:
    crowd = people((0, 0, 20, 70), (30, 0, 50, 70), (60, 0, 80, 70))
    # The first is person 0, the others nobody's; the crowd's depth is 6.3 heads, feet at y 123 and y 68.
    found = heads((10, 7), (200, 60), (300, 5))
    walkable = np.array([[0, 100], [400, 100], [400, 300], [0, 300]], np.float32)
    fused = fuse(crowd, found, walkable, RULE)
    assert (fused.count, fused.unboxed.tolist()) == (4, [1])
    assert np.allclose(fused.unboxed_feet, [[200, 123]])
    everywhere = fuse(crowd, found, None, RULE)
    assert (everywhere.count, everywhere.unboxed.tolist()) == (5, [1, 2])


def test_a_head_without_a_body_needs_the_higher_score_unless_the_frame_is_a_crowd() -> None:
    crowd = people((0, 0, 20, 70))
    found = Heads(
        np.array([[10, 7], [200, 60], [300, 5], [400, 5]], np.float32),
        np.array([0.15, 0.3, 0.6, 0.3], np.float32),
        np.full(4, 10, np.float32),
    )
    # 3 lone heads of 4: a crowd, every head counts; the 0.15 head still confirms person 0.
    assert fuse(crowd, found, None, RULE).unboxed.tolist() == [1, 2, 3]
    # 4 lone heads needed for a crowd: only the 0.6 head is a person alone.
    strict = HeadConfig(min_score=0.2, unboxed_score=0.5, crowd_heads=4, crowd_share=0.5)
    assert fuse(crowd, found, None, strict).unboxed.tolist() == [2]
