"""The mask stage's pure parts with exact numbers; the shipped model on real faces is in test_mask_model.py."""

import numpy as np
import pytest

from sanitary.evaluation.mask_eval import match_boxes, report, wilson
from sanitary.perception.faces import frame_input_size
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.masks import face_crops, nose_offset


def test_face_crops_square_with_margin_and_rgb() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = (255, 0, 0)  # a blue square in BGR
    crops = face_crops(image, np.array([[90, 40, 110, 60]], np.float32), size=28, margin=0.2)
    assert crops.shape == (1, 28, 28, 3) and crops.dtype == np.uint8
    # 20 px box + 4 px margin a side = 28 px: the box fills the middle 20 px, in RGB order.
    assert crops[0, 14, 14].tolist() == [0, 0, 255]
    assert crops[0, 1, 1].tolist() == [0, 0, 0]
    assert crops[0, 4:24, 4:24, 2].min() == 255


def test_face_crops_at_the_border_replicate_edges() -> None:
    image = np.full((50, 50, 3), 200, np.uint8)
    crops = face_crops(image, np.array([[0, 0, 20, 20]], np.float32), size=28, margin=0.2)
    assert crops[0].min() == 200  # no black padding that could look like a dark mask


def test_nose_offset_frontal_and_side_on() -> None:
    frontal = np.array([[[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]]], np.float32)
    turned = np.array([[[40, 50], [60, 50], [62, 60], [48, 70], [62, 70]]], np.float32)
    assert nose_offset(frontal).tolist() == [0.0]
    assert nose_offset(turned).tolist() == pytest.approx([0.6])


def test_whole_frame_face_input_is_scaled_and_a_multiple_of_32() -> None:
    assert frame_input_size(1280, 720, 640) == (640, 384)
    # Small photos are enlarged: CenterFace then finds more of their small faces (eval-mask --detect).
    assert frame_input_size(400, 300, 640) == (640, 480)


def test_report_exact_numbers_with_unknown_kept() -> None:
    truth = [0, 0, 0, 0, 1, 1, 2, 2]
    predicted = [0, 0, 1, MaskClass.UNKNOWN, 1, 0, 2, MaskClass.UNKNOWN]
    r = report(truth, predicted)
    assert r.confusion == [[2, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
    wm = r.per_class["with_mask"]
    assert (wm.precision, wm.recall, wm.support) == (2 / 3, 0.5, 4)
    assert wm.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    inc = r.per_class["mask_weared_incorrect"]
    assert (inc.precision, inc.recall) == (1.0, 0.5)
    assert r.accuracy == 4 / 8
    assert r.coverage == 6 / 8


def test_wilson_interval() -> None:
    low, high = wilson(18, 20)
    assert low == pytest.approx(0.699, abs=1e-3) and high == pytest.approx(0.972, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_matching_is_one_to_one() -> None:
    annotated = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], np.float32)
    detected = np.array([[1, 1, 11, 11], [21, 0, 31, 10]], np.float32)
    assert match_boxes(annotated, detected) == [0, 1, -1]
