"""Choices made on the training split: folds by image with the rare classes spread, and the class bias."""

from __future__ import annotations

import numpy as np
import pytest

from sanitary.config import MaskConfig
from sanitary.train.model_selection import choose_bias, image_folds

BIG = np.array([[0.0, 0.0, 50.0, 50.0]])  # faces large enough never to be unknown for their size


def test_folds_spread_the_rarest_images_and_cover_every_image() -> None:
    # Class 2 is in two images, class 1 alone in two more, with class 0 in one; class 0 alone in three.
    per_image = [np.array(x) for x in ([2], [2], [1], [1], [0], [0], [0, 1], [0])]
    folds = image_folds(per_image, 2, seed=0)
    assert sorted(folds.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert folds[0] != folds[1]  # the two class-2 images
    assert sorted(folds[[2, 3, 6]].tolist()) in ([0, 0, 1], [0, 1, 1])  # images whose rarest class is 1
    assert (image_folds(per_image, 2, seed=0) == folds).all()


def test_folds_refuse_too_few_images_or_folds() -> None:
    with pytest.raises(ValueError, match="2 images cannot fill 3 folds"):
        image_folds([np.array([0]), np.array([1])], 3, seed=0)
    with pytest.raises(ValueError, match="at least 2 folds"):
        image_folds([np.array([0]), np.array([1])], 1, seed=0)


def test_bias_recovers_a_rare_face_read_as_the_eval_reads_it() -> None:
    labels = np.array([0, 0, 0, 1, 2])
    logits = np.array(
        [
            [3.0, 0.0, 0.0],
            [3.0, 0.0, 0.0],
            [3.0, 0.0, 0.5],  # a masked face the rare class would take once its bias passes 2.5
            [0.0, 3.0, 0.0],
            [1.0, 0.0, 0.5],  # the rare face: unbiased it reads with_mask at 0.51, below 0.6, so unknown
        ]
    )
    choice = choose_bias(logits, labels, np.repeat(BIG, 5, axis=0), MaskConfig())
    # A bias of 0.75 would already make it the argmax (0.48), but only 1.25 makes it sure enough (0.61).
    assert choice.bias == (0.0, 0.0, 1.25)
    assert choice.macro_f1 == 1.0
    assert choice.recall == {"with_mask": 1.0, "without_mask": 1.0, "mask_weared_incorrect": 1.0}
    assert choice.unbiased_macro_f1 == 0.6667
    assert choice.unbiased_recall["mask_weared_incorrect"] == 0.0
    assert choice.confusion == [[3, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]


def test_no_bias_when_training_left_nothing_to_recover() -> None:
    labels = np.array([0, 1, 2])
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    choice = choose_bias(logits, labels, np.repeat(BIG, 3, axis=0), MaskConfig())
    assert choice.bias == (0.0, 0.0, 0.0)
    assert choice.macro_f1 == choice.unbiased_macro_f1 == 1.0
