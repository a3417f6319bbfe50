import numpy as np
import pytest

from sanitary.analytics.mask_rate import corrected_shares, mask_shares

PERFECT = np.diag([400, 400, 400])


def test_correction_inverts_a_known_confusion() -> None:
    # 10% of masked faces read as unmasked, 20% of unmasked read as masked, incorrect read right.
    m = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    true = np.array([0.7, 0.2, 0.1])
    predicted = m.T @ true  # 0.67, 0.23, 0.10
    assert corrected_shares(predicted, m) == pytest.approx(true)


def test_impossible_shares_are_clipped_to_the_simplex() -> None:
    m = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    # Fewer predicted masks than even a mask-free crowd would give: no negative share comes out.
    shares = corrected_shares(np.array([0.1, 0.9, 0.0]), m)
    assert shares.min() >= 0 and shares.sum() == pytest.approx(1.0)
    assert shares[0] == 0.0


def test_no_classified_face_gives_no_rate() -> None:
    assert mask_shares((0, 0, 0), PERFECT) is None


def test_interval_is_seeded_and_contains_the_estimate() -> None:
    a = mask_shares((80, 15, 5), PERFECT)
    b = mask_shares((80, 15, 5), PERFECT)
    assert a == b
    assert a is not None and a.n == 100
    assert a.mask_rate == pytest.approx(0.8)
    assert a.low[0] < 0.8 < a.high[0]
    # A near-perfect classifier leaves about the sampling interval of 80 in 100 (Wilson: 0.711-0.867).
    assert a.low[0] == pytest.approx(0.711, abs=0.02) and a.high[0] == pytest.approx(0.867, abs=0.02)


def test_a_less_certain_classifier_widens_the_interval() -> None:
    sure = mask_shares((80, 15, 5), PERFECT)
    unsure = mask_shares((80, 15, 5), np.array([[36, 4, 0], [4, 16, 0], [1, 1, 3]]))
    assert sure is not None and unsure is not None
    assert unsure.high[0] - unsure.low[0] > 1.3 * (sure.high[0] - sure.low[0])


def test_more_faces_narrow_the_interval() -> None:
    few = mask_shares((8, 2, 0), PERFECT)
    many = mask_shares((800, 200, 0), PERFECT)
    assert few is not None and many is not None
    assert many.high[0] - many.low[0] < (few.high[0] - few.low[0]) / 4
