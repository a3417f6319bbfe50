"""Ground-plane geometry: exact homographies, refusals that name the points, uncertainty checked numerically."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from sanitary.errors import SanitaryError
from sanitary.geometry.homography import (
    ZoneGeometry,
    check_horizon,
    check_pairs,
    close_pairs,
    close_probability,
    distance_sigma,
    feet_sigma_px,
    fit_homography,
    frame_region,
    ground_jacobians,
    nearest_neighbour,
    normal_cdf,
    normal_quantile,
    normalised_dlt,
    pairwise_distances,
    polygon_area_m2,
    read_tsai,
    to_ground,
    tsai_ground_homography,
    zone_area_m2,
    zone_membership,
)

PETS = Path(__file__).resolve().parents[3] / "shared/datasets/pets2009-s2l1"
TSAI_XML = PETS / "calibration_View_001_tsai.xml"
GT_WORLD = PETS / "gt_world_view001.csv"

# Image px -> ground m. A pure scale and translation (2 cm per pixel), and a real perspective: a camera looking
# down a plaza, its horizon at y = -200 px, above the frame.
AFFINE = np.array([[0.02, 0.0, -3.0], [0.0, -0.02, 8.0], [0.0, 0.0, 1.0]])
PERSPECTIVE = np.array([[0.05, 0.004, -12.0], [0.001, 0.09, -6.0], [0.0, 0.004, 0.8]])
FRAME = frame_region(640, 480)
IMAGE_PTS = np.array([[40.0, 420.0], [600.0, 440.0], [560.0, 120.0], [90.0, 100.0], [320.0, 260.0], [200.0, 380.0]])


def same_homography(a: np.ndarray, b: np.ndarray) -> float:
    """Largest entry difference once both are scaled to H[2, 2] = 1."""
    return float(np.abs(a / a[2, 2] - b / b[2, 2]).max())


def ground_of(H: np.ndarray, image: np.ndarray) -> np.ndarray:
    q = np.c_[image, np.ones(len(image))] @ H.T
    return q[:, :2] / q[:, 2:]


@pytest.mark.parametrize("H", [AFFINE, PERSPECTIVE], ids=["affine", "perspective"])
@pytest.mark.parametrize("n", [4, 6])
def test_known_homography_recovered_exactly(H: np.ndarray, n: int) -> None:
    ground = ground_of(H, IMAGE_PTS[:n])
    fit = fit_homography(IMAGE_PTS[:n], ground)
    assert same_homography(fit.H, H) < 1e-9
    assert fit.inliers.all()
    assert fit.rms_px < 1e-9 and fit.rms_m < 1e-9
    assert (fit.loo_m is None) == (n == 4)
    if fit.loo_m is not None:
        assert np.nanmax(fit.loo_m) < 1e-9


def test_normalised_dlt_is_exact_and_conditioned() -> None:
    # Hartley normalisation: the same answer for points a thousand times further from the origin.
    ground = ground_of(PERSPECTIVE, IMAGE_PTS)
    assert same_homography(normalised_dlt(IMAGE_PTS, ground), PERSPECTIVE) < 1e-9
    shifted = IMAGE_PTS + 1e5
    moved = PERSPECTIVE @ np.array([[1, 0, -1e5], [0, 1, -1e5], [0, 0, 1.0]])
    assert same_homography(normalised_dlt(shifted, ground_of(moved, shifted)), moved) < 1e-9


def test_pixels_to_ground() -> None:
    pixels = np.random.default_rng(1).uniform([0, 0], [640, 480], size=(200, 2))
    for H in (AFFINE, PERSPECTIVE):
        np.testing.assert_allclose(to_ground(H, pixels), ground_of(H, pixels), rtol=1e-12)
    assert to_ground(AFFINE, np.empty((0, 2))).shape == (0, 2)


def test_points_beyond_the_horizon_are_refused() -> None:
    with pytest.raises(SanitaryError, match=r"pixels 2, 3 lie on or beyond the horizon"):
        to_ground(PERSPECTIVE, [[100, 100], [100, -200], [50, -300]])


def test_ransac_flags_a_gross_outlier() -> None:
    image = np.array([[x, y] for x in (40.0, 240.0, 440.0, 620.0) for y in (120.0, 300.0, 460.0)])
    ground = ground_of(PERSPECTIVE, image)
    ground[4] += [3.0, -2.0]  # a mistyped measurement
    fit = fit_homography(image, ground, ransac_px=3.0)
    assert np.flatnonzero(~fit.inliers).tolist() == [4]
    assert same_homography(fit.H, PERSPECTIVE) < 1e-9
    assert fit.error_px[4] > 10 and fit.error_m[4] > 1
    assert fit.loo_m is not None and fit.loo_m[4] == fit.error_m[4]
    assert np.nanmax(np.delete(fit.loo_m, 4)) < 1e-9


def test_leave_one_out_sees_noise_the_fit_hides() -> None:
    rng = np.random.default_rng(2)
    image = rng.uniform([20, 120], [620, 460], size=(8, 2))
    ground = ground_of(PERSPECTIVE, image + rng.normal(0, 0.5, size=image.shape))
    fit = fit_homography(image, ground, ransac_px=5.0)
    assert fit.inliers.all() and fit.loo_m is not None
    assert np.median(fit.loo_m) > np.median(fit.error_m)


def message(exc: pytest.ExceptionInfo[SanitaryError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


SQUARE = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
PIX = np.array([[100.0, 400.0], [500.0, 400.0], [420.0, 150.0], [180.0, 150.0]])


@pytest.mark.parametrize(
    ("image", "ground", "expected"),
    [
        (PIX[:3], SQUARE[:3], r"at least 4 image/ground pairs, got 3"),
        (PIX, SQUARE[:3], r"got 4 image points and 3 ground points"),
        (PIX[[0, 1, 2, 1]], SQUARE, r"image points 2 and 4 are the same \(500, 400\)"),
        (PIX, SQUARE[[0, 1, 2, 0]], r"ground points 1 and 4 are the same"),
        (np.array([[100, 400], [300, 400], [500, 400], [300, 100.0]]), SQUARE, r"image points 1, 2, 3 are collinear"),
        (PIX, np.array([[0, 0], [10, 0], [5, 5], [5, 0.0]]), r"ground points 1, 2, 4 are collinear"),
        (
            np.array([[0, 0], [100, 100], [200, 200], [300, 300.5], [400, 400]]),
            np.array([[0, 0], [1, 0], [1, 1], [0, 1], [3, 5.0]]),
            r"image points 1, 2, 3, 4, 5 all lie nearly on one line",
        ),
        (
            np.array([[0, 0], [100, 0], [200, 0], [300, 0], [150, 200]]),
            np.array([[0, 0], [1, 0], [1, 1], [0, 1], [3, 5.0]]),
            r"image points 1, 2, 3, 4 lie nearly on one line and only point 5 is off it",
        ),
        (np.array([[0, 0], [1, 0], [np.nan, 1], [0, 1]]), SQUARE, r"image points 3 are not finite"),
    ],
    ids=["too-few", "unequal", "dup-image", "dup-ground", "collinear-image", "collinear-ground", "all-on-line",
         "all-but-one-on-line", "nan"],
)  # fmt: skip
def test_check_pairs_refusals_name_the_points(image: np.ndarray, ground: np.ndarray, expected: str) -> None:
    with pytest.raises(SanitaryError) as exc:
        check_pairs(image, ground)
    assert re.search(expected, message(exc))
    with pytest.raises(SanitaryError, match=expected):
        fit_homography(image, ground)


def test_check_horizon() -> None:
    check_horizon(PERSPECTIVE, FRAME)
    # The horizon of PERSPECTIVE is y = -200: a region reaching above it is crossed, one wholly above is beyond.
    with pytest.raises(SanitaryError) as exc:
        check_horizon(PERSPECTIVE, [[0, -300], [640, -300], [640, 480], [0, 480]])
    assert re.search(r"crosses the walkable area \(corners 1, 2 lie beyond it\).*probably wrong", message(exc))
    with pytest.raises(SanitaryError, match=r"whole walkable area lies beyond the horizon"):
        check_horizon(PERSPECTIVE, [[0, -300], [640, -300], [640, -250]])
    # Points clicked in a strip at the top of the frame, their near and far ground corners swapped: the fit says
    # the ground shrinks towards the camera, and its horizon (y = 340) runs through the people below.
    image = np.array([[140.0, 40], [500, 40], [540, 10], [100, 10]])
    ground = np.array([[0.0, 0], [10, 0], [10, 10], [0, 10]])
    with pytest.raises(SanitaryError, match=r"too far from the walkable area"):
        check_horizon(fit_homography(image, ground).H, FRAME)


def test_jacobians_match_finite_differences() -> None:
    pixels = np.array([[100.0, 400.0], [320.0, 100.0], [600.0, 250.0]])
    jac = ground_jacobians(PERSPECTIVE, pixels)
    h = 1e-4
    for axis in range(2):
        step = np.zeros(2)
        step[axis] = h
        numeric = (to_ground(PERSPECTIVE, pixels + step) - to_ground(PERSPECTIVE, pixels - step)) / (2 * h)
        np.testing.assert_allclose(jac[:, :, axis], numeric, rtol=1e-6)


def test_distance_sigma_matches_monte_carlo() -> None:
    feet = np.array([[120.0, 420.0], [180.0, 400.0], [400.0, 120.0], [430.0, 130.0]])
    sigma_px = np.array([1.5, 2.0, 0.5, 0.8])
    sigma = distance_sigma(PERSPECTIVE, feet, sigma_px)
    rng = np.random.default_rng(3)
    draws = feet + rng.normal(size=(20000, *feet.shape)) * sigma_px[None, :, None]
    ground = to_ground(PERSPECTIVE, draws.reshape(-1, 2)).reshape(draws.shape)
    diff = ground[:, :, None, :] - ground[:, None, :, :]
    empirical = np.hypot(diff[..., 0], diff[..., 1]).std(axis=0)
    np.testing.assert_allclose(sigma, empirical, rtol=0.03, atol=1e-12)
    assert (np.diag(sigma) == 0).all() and np.allclose(sigma, sigma.T)
    # One sigma for all is the same as repeating it.
    np.testing.assert_allclose(distance_sigma(PERSPECTIVE, feet, 1.0), distance_sigma(PERSPECTIVE, feet, np.ones(4)))


def test_distance_sigma_along_the_pair_only() -> None:
    # Affine 2 cm / px: two people on a row, error only along x counts: sqrt(2) * 0.02 * sigma.
    sigma = distance_sigma(AFFINE, [[100.0, 200.0], [300.0, 200.0]], 3.0)
    assert sigma[0, 1] == pytest.approx(math.sqrt(2) * 0.06, rel=1e-12)
    # On the same spot: the average over directions, the same value for an isotropic map.
    assert distance_sigma(AFFINE, [[100.0, 200.0], [100.0, 200.0]], 3.0)[0, 1] == pytest.approx(math.sqrt(2) * 0.06)


def test_feet_sigma() -> None:
    np.testing.assert_allclose(feet_sigma_px(np.array([100.0, 40.0]), fraction=0.1), [10.0, 4.0])
    with pytest.raises(SanitaryError, match=r"box heights 2 are negative"):
        feet_sigma_px(np.array([100.0, -1.0]))


def test_pairwise_and_nearest() -> None:
    ground = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])
    d = pairwise_distances(ground)
    np.testing.assert_allclose(d, [[0, 5, math.hypot(3, 5)], [5, 0, 1], [math.hypot(3, 5), 1, 0]])
    np.testing.assert_allclose(nearest_neighbour(d), [5, 1, 1])
    assert nearest_neighbour(pairwise_distances(np.array([[1.0, 2.0]]))).tolist() == [math.inf]
    assert nearest_neighbour(np.zeros((0, 0))).shape == (0,)


def test_close_pairs_at_known_distance_and_sigma() -> None:
    d = np.array([[0.0, 1.8], [1.8, 0.0]])
    sigma = np.array([[0.0, 0.2], [0.2, 0.0]])
    # P(true < 2 m) = Phi(1) = 0.8413.
    assert close_probability(d, sigma, 2.0)[0, 1] == pytest.approx(0.841344746, abs=1e-9)
    assert close_pairs(d, sigma, 2.0, 0.84)[0, 1]
    assert not close_pairs(d, sigma, 2.0, 0.85)[0, 1]
    assert not close_pairs(d, sigma, 2.0, 0.5)[0, 0]
    # Measured 2.2 m: still close at 2 m with probability Phi(-1) = 0.1587.
    assert close_pairs(d + 0.4, sigma, 2.0, 0.15)[0, 1] and not close_pairs(d + 0.4, sigma, 2.0, 0.5)[0, 1]
    # An exact distance is close or not for sure.
    exact = close_probability(np.array([1.0, 3.0]), np.zeros(2), 2.0)
    assert exact.tolist() == [1.0, 0.0]
    with pytest.raises(SanitaryError, match=r"confidence is 1\.0"):
        close_pairs(d, sigma, 2.0, 1.0)


def test_normal_quantile() -> None:
    assert normal_cdf(1.0) == pytest.approx(0.841344746, abs=1e-9)
    assert normal_quantile(0.95) == pytest.approx(1.6448536269514722, abs=1e-10)
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-12)


def test_zones_on_a_square() -> None:
    square_m = ZoneGeometry("plaza", [[0, 0], [4, 0], [4, 4], [0, 4]])
    square_px = ZoneGeometry("door", [[100, 200], [300, 200], [300, 400], [100, 400]], units="px")
    feet = np.array([[150.0, 250.0], [350.0, 250.0], [300.0, 300.0], [50.0, 50.0]])
    ground = np.array([[1.0, 1.0], [4.0, 2.0], [5.0, 5.0], [-0.1, 2.0]])  # the second on the border
    membership = zone_membership(feet, ground, [square_m, square_px])
    assert membership.tolist() == [[True, True, False, False], [True, False, True, False]]
    assert polygon_area_m2(square_m.corners) == 16.0
    assert polygon_area_m2(square_m.corners[::-1]) == 16.0
    # 200 x 200 px at 2 cm per px: 4 m x 4 m.
    assert zone_area_m2(square_px, AFFINE) == pytest.approx(16.0, rel=1e-12)
    with pytest.raises(SanitaryError, match="zone 'door' is in pixels; its area in m² needs a ground calibration"):
        zone_area_m2(square_px)


def test_zone_area_through_perspective() -> None:
    # A pixel zone's ground area is the shoelace of its corners on the ground: edges stay straight.
    corners_m = np.array([[-2.0, 1.0], [3.0, 1.0], [3.0, 6.0], [-2.0, 6.0]])
    corners_px = ground_of(np.linalg.inv(PERSPECTIVE), corners_m)  # the inverse maps the ground to the image
    zone = ZoneGeometry("ground square", corners_px, units="px")
    assert zone_area_m2(zone, PERSPECTIVE) == pytest.approx(25.0, rel=1e-9)


def test_bad_zones_are_refused() -> None:
    with pytest.raises(SanitaryError, match=r"zone 'x' needs a polygon of at least 3 corners"):
        ZoneGeometry("x", [[0, 0], [1, 1]])
    with pytest.raises(SanitaryError, match=r"zone 'x': units are 'cm'"):
        ZoneGeometry("x", [[0, 0], [1, 0], [0, 1]], units="cm")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gt_world() -> np.ndarray:
    if not (TSAI_XML.is_file() and GT_WORLD.is_file()):
        pytest.skip(f"PETS 2009 S2L1 calibration and world ground truth not found in {PETS}")
    return np.loadtxt(GT_WORLD, delimiter=",", skiprows=1)


def test_tsai_projection_reproduces_the_ground_truth(gt_world: np.ndarray) -> None:
    # The shared ground truth placed feet at the bottom-centre of each 768-px box, (xc, yc + h / 2): the full
    # Tsai model maps its world feet there to a thousandth of a pixel, and 40 px away from the box centre.
    cam = read_tsai(TSAI_XML)
    xc, yc, _, h = gt_world[:, 2:6].T
    world = np.c_[gt_world[:, 6:8] * 1000, np.zeros(len(gt_world))]
    pixels, depth = cam.project(world)
    assert (depth > 0).all()
    assert np.median(np.hypot(*(pixels - np.c_[xc, yc + h / 2]).T)) < 0.01


@pytest.mark.parametrize(("width", "height"), [(768, 576), (480, 360)])
def test_tsai_homography_against_ground_truth(gt_world: np.ndarray, width: int, height: int) -> None:
    H = tsai_ground_homography(TSAI_XML, width, height)
    check_horizon(H, frame_region(width, height))
    xc, yc, _, h = gt_world[:, 2:6].T
    feet = np.c_[xc, yc + h / 2] * [width / 768, height / 576]
    error = np.hypot(*(to_ground(H, feet) - gt_world[:, 6:8]).T)
    # The rest is lens distortion a homography cannot follow (kappa1 bends the frame's edges by ~10 px).
    assert np.median(error) < 0.05
    assert np.percentile(error, 90) < 0.08


def test_tsai_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SanitaryError, match="Tsai calibration not found"):
        tsai_ground_homography(tmp_path / "none.xml", 480, 360)
    bad = tmp_path / "bad.xml"
    bad.write_text('<Camera><Geometry width="768"/></Camera>')
    with pytest.raises(SanitaryError, match=r"<Geometry> must carry numeric attributes"):
        read_tsai(bad)
