import numpy as np

from sanitary.evaluation.crowd import matched_in_boxes


def test_points_match_the_boxes_they_fall_in_one_to_one():
    boxes = np.array([[0, 0, 10, 10], [8, 0, 18, 10], [100, 100, 110, 110]], np.float64)
    # The first point lies in both of the first two boxes, the second only in the second: both pair up.
    found = np.array([[9, 5], [16, 5], [50, 50]], np.float32)
    assert matched_in_boxes(found, boxes) == 2
    # Two points in one box still pair with it once.
    assert matched_in_boxes(np.array([[101, 101], [105, 105]], np.float32), boxes) == 1
    assert matched_in_boxes(np.zeros((0, 2), np.float32), boxes) == 0
