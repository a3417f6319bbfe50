"""Ground-plane geometry: feet in image pixels to metres on the ground, distances with their uncertainty, zones.

A fixed camera sees flat ground through a homography H (3x3, image pixels -> ground metres), fitted from a few
points the operator clicks in the image and measures on the ground, or imported from a Tsai calibration. A person
stands at the bottom-centre of their box. The feet point of a detected box is uncertain by a share of the box
height, and a pixel is worth far more metres at the back of a scene than at the front; every distance therefore
comes with its 1-sigma, propagated through the homography, so that "closer than 2 m" can be decided at a chosen
confidence rather than on a point estimate.

Everything here is a pure function of numpy arrays; problems in the user's input are `SanitaryError`s that name
the points at fault (1-based, as the user numbered them) and the fix.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sanitary.errors import SanitaryError

MIN_PAIRS = 4
# Points whose spread off their best line is under this share of their spread along it fix no perspective: a
# 1 px click error moves the fitted vanishing point by ~1/ratio px, so anything tighter is a line in practice.
COLLINEAR_RATIO = 0.01
# Two points closer than this share of the whole set's extent are the same point typed twice.
DUPLICATE_RATIO = 1e-3
# A fixed seed: the same clicks give the same calibration on every machine.
RANSAC_SEED = 0
# Up to this many 4-point samples every combination is tried (8 pairs give 70), beyond it a seeded random draw.
RANSAC_SAMPLES = 2000
# The feet point of a detected box is uncertain by this share of the box height (1 sigma, pixels). Chosen on
# PETS S2L1 so that 90% intervals of pairwise distances hold ~90% of true distances end to end (detector, box
# jitter, calibration); see benchmarks/geometry_benchmark.py.
FEET_SIGMA_FRACTION = 0.06
# The Tsai import samples this many pixels across and proportionally down the image ...
TSAI_GRID = 64
# ... and ignores ground further than this from the camera: a person there is a few pixels tall, and rows just
# below a visible horizon would otherwise stretch the fit over kilometres.
TSAI_MAX_RANGE_M = 150.0

ZoneUnits = Literal["m", "px"]


# ---------------------------------------------------------------- input checks


def _as_points(pts: np.ndarray | Sequence[Sequence[float]], what: str) -> np.ndarray:
    """`pts` as a float64 (N, 2) array, or a one-line error naming `what` and the bad rows."""
    arr = np.asarray(pts, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise SanitaryError(f"{what} must be a list of (x, y) pairs, got an array of shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise SanitaryError(f"{what} {_numbers(bad)} are not finite numbers; give a value for each coordinate")
    return arr


def _numbers(indices: Sequence[int] | np.ndarray) -> str:
    """0-based indices as the user numbered them."""
    return ", ".join(str(int(i) + 1) for i in indices)


def _extent(pts: np.ndarray) -> float:
    return float(np.hypot(*np.ptp(pts, axis=0)))


def _collinear(pts: np.ndarray) -> bool:
    """Whether the points lie nearly on one line (or on one point)."""
    s = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    return bool(s[0] == 0 or s[1] < COLLINEAR_RATIO * s[0])


def _line_subset(pts: np.ndarray) -> np.ndarray | None:
    """Indices of all points, or of all but one, when they lie nearly on one line; else None.

    A homography needs four points with no three on a line; a set has four such points unless all of it, or all
    of it but one point, is on a line.
    """
    everyone = np.arange(len(pts))
    if _collinear(pts):
        return everyone
    for i in everyone:
        rest = np.delete(everyone, i)
        if _collinear(pts[rest]):
            return rest
    return None


def _check_duplicates(pts: np.ndarray, what: str) -> None:
    tol = DUPLICATE_RATIO * _extent(pts)
    gaps = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    i, j = np.nonzero(np.triu(gaps <= tol, k=1))
    if len(i):
        x, y = pts[i[0]]
        raise SanitaryError(
            f"{what} points {i[0] + 1} and {j[0] + 1} are the same ({x:.6g}, {y:.6g}); remove one or correct it"
        )


def _check_spread(pts: np.ndarray, what: str) -> None:
    line = _line_subset(pts)
    if line is None:
        return
    if len(line) == len(pts):
        raise SanitaryError(f"{what} points {_numbers(line)} all lie nearly on one line; add pairs well off that line")
    (off,) = np.setdiff1d(np.arange(len(pts)), line)
    if len(pts) == MIN_PAIRS:
        raise SanitaryError(
            f"{what} points {_numbers(line)} are collinear; with 4 pairs no three may be on one line: "
            "move one of them or add pairs"
        )
    raise SanitaryError(
        f"{what} points {_numbers(line)} lie nearly on one line and only point {off + 1} is off it; "
        "a homography needs 4 points with no three on a line: add pairs off that line"
    )


def check_pairs(image_pts: np.ndarray, ground_pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refuse pairs that cannot fix a homography; return them as float64 (N, 2) arrays.

    Refused: unequal counts, fewer than 4 pairs, the same image or ground point twice, and image or ground points
    that all (or all but one) lie nearly on one line, which with 4 pairs means any three collinear.
    """
    image = _as_points(image_pts, "image points")
    ground = _as_points(ground_pts, "ground points")
    if len(image) != len(ground):
        raise SanitaryError(
            f"got {len(image)} image points and {len(ground)} ground points; give one ground point per image point"
        )
    if len(image) < MIN_PAIRS:
        raise SanitaryError(
            f"a ground calibration needs at least {MIN_PAIRS} image/ground pairs, got {len(image)}; "
            "add pairs spread over the walkable area"
        )
    for pts, what in ((image, "image"), (ground, "ground")):
        _check_duplicates(pts, what)
        _check_spread(pts, what)
    return image, ground


# ---------------------------------------------------------------- mapping


def _project(H: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points mapped by H and their homogeneous scale w; w <= 0 means on or beyond the horizon."""
    q = pts @ H[:, :2].T + H[:, 2]
    w = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[:, :2] / w[:, None], w


def _below_horizon(H: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N,) bool: which homogeneous scales `w` (from `_project`) are of points that map to the ground."""
    # A relative floor: w is scaled with H, and a point this close to the horizon lands kilometres away anyway.
    return w > 1e-12 * np.abs(H).max()


def _mapped(H: np.ndarray, pts: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`_project`, refusing points that map to infinity."""
    out, w = _project(H, pts)
    bad = np.flatnonzero(~_below_horizon(H, w))
    if len(bad):
        raise SanitaryError(
            f"{what} {_numbers(bad)} lie on or beyond the horizon of the calibration, where the ground is at "
            "infinity; keep them inside the walkable area, or calibrate with points nearer to them"
        )
    return out, w


def on_ground(H: np.ndarray, pts_px: np.ndarray) -> np.ndarray:
    """(N,) bool: points below the horizon, which map to the ground (a detection in the sky does not)."""
    H = np.asarray(H, np.float64)
    return _below_horizon(H, _project(H, _as_points(pts_px, "pixels"))[1])


def _unit_scale(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """H scaled to unit norm, its sign chosen so that w > 0 on `pts` (the side of the horizon they are on)."""
    H = H / np.linalg.norm(H)
    w = pts @ H[2, :2] + H[2, 2]
    return -H if np.median(w) < 0 else H


def to_ground(H: np.ndarray, pts_px: np.ndarray) -> np.ndarray:
    """Image pixels (N, 2) to ground metres (N, 2)."""
    return _mapped(np.asarray(H, np.float64), _as_points(pts_px, "pixels"), "pixels")[0]


def ground_jacobians(H: np.ndarray, pts_px: np.ndarray) -> np.ndarray:
    """d(ground)/d(pixel) at each point, (N, 2, 2), metres per pixel: row = ground axis, column = pixel axis."""
    H = np.asarray(H, np.float64)
    ground, w = _mapped(H, _as_points(pts_px, "pixels"), "pixels")
    # Quotient rule on g = (H[:2] p) / (H[2] p).
    return (H[None, :2, :2] - ground[:, :, None] * H[None, 2, None, :2]) / w[:, None, None]


# ---------------------------------------------------------------- fitting


def _normaliser(pts: np.ndarray) -> np.ndarray:
    """Hartley's similarity: centroid to the origin, mean distance to it sqrt(2), so the DLT is well conditioned."""
    centre = pts.mean(axis=0)
    scale = math.sqrt(2) / np.hypot(*(pts - centre).T).mean()
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def normalised_dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The homography taking `src` (N >= 4, 2) to `dst`: Hartley-normalised direct linear transform.

    Exact for 4 points in general position; for more, the least-squares solution of the algebraic error, which
    after normalisation is close to the geometric error in `dst`. Scaled to unit norm with w > 0 on `src`.
    """
    t_src, t_dst = _normaliser(src), _normaliser(dst)
    x, y = _project(t_src, src)[0].T
    u, v = _project(t_dst, dst)[0].T
    zero, one = np.zeros_like(x), np.ones_like(x)
    # At least 9 rows, so that the reduced SVD below still returns the null vector of 4 pairs' 8 equations.
    a = np.zeros((max(2 * len(x), 9), 9))
    a[0 : 2 * len(x) : 2] = np.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], axis=1)
    a[1 : 2 * len(x) : 2] = np.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], axis=1)
    # Reduced SVD: the full one builds a (2N, 2N) matrix, gigabytes for the Tsai grid.
    h = np.linalg.svd(a, full_matrices=False)[2][-1].reshape(3, 3)
    return _unit_scale(np.linalg.inv(t_dst) @ h @ t_src, src)


def _errors(H: np.ndarray, image: np.ndarray, ground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: ground point mapped to the image vs the image point (px); image point mapped to the ground vs the
    ground point (m). Infinite where a point falls beyond the horizon."""

    def gap(mapped: tuple[np.ndarray, np.ndarray], target: np.ndarray) -> np.ndarray:
        pts, w = mapped
        with np.errstate(invalid="ignore"):
            return np.where(w > 0, np.hypot(*(pts - target).T), np.inf)

    return gap(_project(np.linalg.inv(H), ground), image), gap(_project(H, image), ground)


def _degenerate(image: np.ndarray, ground: np.ndarray) -> bool:
    return _line_subset(image) is not None or _line_subset(ground) is not None


def _samples(n: int) -> np.ndarray:
    """4-point samples: every combination when there are few, else a seeded random draw."""
    if math.comb(n, MIN_PAIRS) <= RANSAC_SAMPLES:
        return np.array(list(itertools.combinations(range(n), MIN_PAIRS)))
    rng = np.random.default_rng(RANSAC_SEED)
    return np.array([rng.choice(n, MIN_PAIRS, replace=False) for _ in range(RANSAC_SAMPLES)])


def _ransac(image: np.ndarray, ground: np.ndarray, ransac_px: float) -> np.ndarray:
    """Inliers of the best-supported homography over minimal samples, then refitted on its inliers until stable."""
    best: tuple[int, float] = (0, -math.inf)
    inliers: np.ndarray | None = None
    for sample in _samples(len(image)):
        if _degenerate(image[sample], ground[sample]):
            continue
        err_px = _errors(normalised_dlt(image[sample], ground[sample]), image, ground)[0]
        agree = err_px <= ransac_px
        # MSAC tie-break: among samples with as many inliers, the one that fits them tightest.
        score = (int(agree.sum()), -float((np.minimum(err_px, ransac_px) ** 2).sum()))
        if score > best:
            best, inliers = score, agree
    if inliers is None:
        raise SanitaryError("no 4 of the pairs are in general position; add pairs spread over the walkable area")
    for _ in range(10):
        err_px = _errors(normalised_dlt(image[inliers], ground[inliers]), image, ground)[0]
        refined = err_px <= ransac_px
        if (refined == inliers).all() or refined.sum() < inliers.sum() or _degenerate(image[refined], ground[refined]):
            break
        inliers = refined
    return inliers


# eq=False: array fields make field-wise equality ambiguous; a fit is compared by identity.
@dataclass(frozen=True, eq=False)
class HomographyFit:
    """A ground calibration and how well its pairs agree with it."""

    H: np.ndarray  # (3, 3), image pixels -> ground metres, unit norm, w > 0 on the ground side of the horizon
    inliers: np.ndarray  # (N,) bool; outliers took no part in H
    error_px: np.ndarray  # (N,) ground point mapped to the image vs the image point
    error_m: np.ndarray  # (N,) image point mapped to the ground vs the ground point
    rms_px: float  # over inliers
    rms_m: float  # over inliers
    # (N,) error at pair i of a fit on the other inliers: what a new point would see; None with 4 pairs, NaN
    # where the other inliers cannot fix a homography.
    loo_m: np.ndarray | None


def _leave_one_out(image: np.ndarray, ground: np.ndarray, inliers: np.ndarray, error_m: np.ndarray) -> np.ndarray:
    # An outlier is already left out of the fit: its own error is its leave-one-out error.
    loo = np.where(inliers, np.nan, error_m)
    for i in np.flatnonzero(inliers):
        rest = inliers.copy()
        rest[i] = False
        if rest.sum() < MIN_PAIRS or _degenerate(image[rest], ground[rest]):
            continue
        loo[i] = _errors(normalised_dlt(image[rest], ground[rest]), image[i : i + 1], ground[i : i + 1])[1][0]
    return loo


def fit_homography(image_pts: np.ndarray, ground_pts: np.ndarray, ransac_px: float = 3.0) -> HomographyFit:
    """Fit image pixels -> ground metres from N >= 4 pairs; beyond 4, pairs off by more than `ransac_px` pixels
    (a mistyped coordinate, a swapped pair) are found by RANSAC and left out."""
    image, ground = check_pairs(image_pts, ground_pts)
    if not ransac_px > 0:
        raise SanitaryError(f"ransac_px is {ransac_px}; it must be a positive number of pixels, e.g. 3")
    n = len(image)
    inliers = np.ones(n, dtype=bool) if n == MIN_PAIRS else _ransac(image, ground, ransac_px)
    H = normalised_dlt(image[inliers], ground[inliers])
    error_px, error_m = _errors(H, image, ground)
    return HomographyFit(
        H=H,
        inliers=inliers,
        error_px=error_px,
        error_m=error_m,
        rms_px=float(np.sqrt(np.mean(error_px[inliers] ** 2))),
        rms_m=float(np.sqrt(np.mean(error_m[inliers] ** 2))),
        loo_m=_leave_one_out(image, ground, inliers, error_m) if n > MIN_PAIRS else None,
    )


def frame_region(width: int, height: int) -> np.ndarray:
    """The whole frame as a region polygon, for a camera without a walkable polygon."""
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def check_horizon(H: np.ndarray, region: np.ndarray) -> None:
    """Refuse a calibration whose horizon (the image line H[2] . [x, y, 1] = 0, mapped to infinity) crosses the
    region where people stand: feet beyond it would land at infinity or behind the camera."""
    polygon = _as_points(region, "region corners")
    if len(polygon) < 3:
        raise SanitaryError(f"the region has {len(polygon)} corners; give a polygon of at least 3 (pixels)")
    # w is linear in the pixel, so it is positive over the whole polygon when it is at every corner.
    beyond = np.flatnonzero(~(_project(np.asarray(H, np.float64), polygon)[1] > 0))
    if len(beyond) == len(polygon):
        raise SanitaryError(
            "the whole walkable area lies beyond the horizon of the calibration; the calibration points are "
            "probably wrong (image and ground swapped?): check them"
        )
    if len(beyond):
        raise SanitaryError(
            f"the horizon of the calibration crosses the walkable area (corners {_numbers(beyond)} lie beyond it); "
            "the calibration points are probably wrong or too far from the walkable area: check them, or add "
            "points inside it"
        )


# ---------------------------------------------------------------- distances and their uncertainty


def pairwise_distances(ground: np.ndarray) -> np.ndarray:
    """Ground distance between every two people, (N, N) metres."""
    g = _as_points(ground, "ground points")
    return np.hypot(*(g[None, :, :] - g[:, None, :]).transpose(2, 0, 1))


def feet_sigma_px(box_heights: np.ndarray, fraction: float = FEET_SIGMA_FRACTION) -> np.ndarray:
    """1-sigma pixel error of each feet point from its box height: the bottom edge of a detected box moves with
    the detector's jitter, legs hidden by others and shadows, roughly in proportion to the person's size."""
    heights = np.asarray(box_heights, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(heights) & (heights >= 0)))
    if len(bad):
        raise SanitaryError(f"box heights {_numbers(bad)} are negative or not numbers; give heights in pixels")
    if not fraction >= 0:
        raise SanitaryError(f"the feet sigma fraction is {fraction}; it must be >= 0 (e.g. {FEET_SIGMA_FRACTION})")
    return fraction * heights


def distance_sigma(H: np.ndarray, feet_px: np.ndarray, sigma_px: float | np.ndarray) -> np.ndarray:
    """1-sigma of every pairwise ground distance, (N, N) metres, from an isotropic pixel error on each feet point.

    First order: each ground point has cov_i = J_i J_i^T sigma_i^2, and the distance moves only along the unit
    vector u between the two people, var(d_ij) = u^T (cov_i + cov_j) u.
    """
    feet = _as_points(feet_px, "feet points")
    n = len(feet)
    sigma = np.asarray(sigma_px, dtype=np.float64)
    if sigma.ndim and sigma.shape != (n,):
        raise SanitaryError(f"got {sigma.size} pixel sigmas for {n} feet points; give one each, or one for all")
    sigma = np.broadcast_to(sigma, (n,))
    if not (np.isfinite(sigma) & (sigma >= 0)).all():
        raise SanitaryError("pixel sigmas must be finite and >= 0")
    ground = to_ground(H, feet)
    jac = ground_jacobians(H, feet)
    diff = ground[None, :, :] - ground[:, None, :]
    d = np.hypot(diff[..., 0], diff[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        u = diff / d[..., None]
    # J^T u: how far each person's pixel error moves the pair's distance, per pixel.
    along_i = np.einsum("iab,ija->ijb", jac, u)
    along_j = np.einsum("jab,ija->ijb", jac, u)
    var = sigma[:, None] ** 2 * (along_i**2).sum(-1) + sigma[None, :] ** 2 * (along_j**2).sum(-1)
    # Two people on the same spot have no direction between them: average u^T cov u over all directions.
    spread = sigma**2 * (jac**2).sum(axis=(1, 2)) / 2
    var = np.where(d > 0, var, spread[:, None] + spread[None, :])
    np.fill_diagonal(var, 0.0)
    return np.sqrt(var)


_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Standard normal P(Z <= z), elementwise (math.erf: no scipy at run time)."""
    return 0.5 * (1.0 + np.asarray(_erf(np.asarray(z, dtype=np.float64) / math.sqrt(2)), dtype=np.float64))


def normal_quantile(p: float) -> float:
    """z with P(Z <= z) = p, by bisection on math.erf (to ~1e-12, plenty for an interval)."""
    if not 0 < p < 1:
        raise SanitaryError(f"a probability must be strictly between 0 and 1, got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p else (lo, mid)
    return (lo + hi) / 2


def close_probability(d: np.ndarray, sigma: np.ndarray, threshold_m: float) -> np.ndarray:
    """P(true distance < threshold) for each pair, the measured distance being normal around it with `sigma`."""
    d = np.asarray(d, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if d.shape != sigma.shape:
        raise SanitaryError(f"distances {d.shape} and sigmas {sigma.shape} differ in shape; pass matching arrays")
    if not threshold_m > 0:
        raise SanitaryError(f"the distance threshold is {threshold_m} m; it must be positive, e.g. 1.5")
    gap = threshold_m - d
    # An exact distance (sigma 0) is close or not for sure.
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, gap / sigma, np.sign(gap) * np.inf)
    return normal_cdf(z)


def close_pairs(d: np.ndarray, sigma: np.ndarray, threshold_m: float, confidence: float) -> np.ndarray:
    """(N, N) bool: pairs closer than `threshold_m` with probability at least `confidence` (never a person with
    themself). Confidence 0.5 decides on the measured distance; higher flags fewer, surer pairs."""
    if not 0 < confidence < 1:
        raise SanitaryError(f"confidence is {confidence}; it must be strictly between 0 and 1, e.g. 0.9")
    close = close_probability(d, sigma, threshold_m) >= confidence
    if close.ndim == 2 and close.shape[0] == close.shape[1]:
        np.fill_diagonal(close, False)
    return close


def nearest_neighbour(d: np.ndarray) -> np.ndarray:
    """Distance from each person to the nearest other one, (N,); inf for a person alone."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise SanitaryError(f"nearest_neighbour needs a square (N, N) distance matrix, got shape {d.shape}")
    others = d.copy()
    np.fill_diagonal(others, np.inf)
    return others.min(axis=1, initial=np.inf)


# ---------------------------------------------------------------- zones


@dataclass(frozen=True)
class ZoneGeometry:
    """A named polygon on the ground, its corners in ground metres or in image pixels."""

    name: str
    # Any (K, 2) sequence or array is accepted; it is stored as a tuple so the zone stays hashable and immutable.
    polygon: tuple[tuple[float, float], ...]
    units: ZoneUnits = "m"

    def __post_init__(self) -> None:
        if self.units not in ("m", "px"):
            raise SanitaryError(f"zone '{self.name}': units are {self.units!r}; use 'm' (ground) or 'px' (image)")
        pts = _as_points(self.polygon, f"zone '{self.name}' corners")
        if len(pts) < 3 or polygon_area_m2(pts) == 0:
            raise SanitaryError(f"zone '{self.name}' needs a polygon of at least 3 corners enclosing an area")
        object.__setattr__(self, "polygon", tuple((float(x), float(y)) for x, y in pts))

    @property
    def corners(self) -> np.ndarray:
        return np.asarray(self.polygon, dtype=np.float64)


def points_in_polygon(pts: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: inside the polygon or on its edge (even-odd rule, vectorised over points and edges)."""
    p = _as_points(pts, "points")[:, None, :]
    a = np.asarray(polygon, dtype=np.float64)[None, :, :]
    b = np.roll(a, -1, axis=1)
    ay, by = a[..., 1], b[..., 1]
    straddles = (ay > p[..., 1]) != (by > p[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[..., 0] + (p[..., 1] - ay) * (b[..., 0] - a[..., 0]) / (by - ay)
    inside = (straddles & (p[..., 0] < x_cross)).sum(axis=1) % 2 == 1
    # A foot on the border counts as in: the even-odd rule alone would decide it by the edge's direction.
    edge, rel = b - a, p - a
    length2 = (edge**2).sum(-1)
    cross = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    dot = (edge * rel).sum(-1)
    tol = 1e-9 * max(1.0, float(np.abs(polygon).max()))
    on_edge = (np.abs(cross) <= tol * np.sqrt(length2)) & (dot >= 0) & (dot <= length2)
    return inside | on_edge.any(axis=1)


def zone_membership(feet_px: np.ndarray, ground: np.ndarray, zones: Sequence[ZoneGeometry]) -> np.ndarray:
    """(Z, N) bool: which people stand in which zone; pixel zones test the feet in the image, metre zones on the
    ground (`ground` may be empty when every zone is in pixels and no calibration exists)."""
    feet = _as_points(feet_px, "feet points")
    rows = []
    for zone in zones:
        pts = feet if zone.units == "px" else _as_points(ground, "ground points")
        if len(pts) != len(feet):
            raise SanitaryError(f"zone '{zone.name}' is in metres; it needs the ground position of every person")
        rows.append(points_in_polygon(pts, zone.corners))
    return np.array(rows, dtype=bool).reshape(len(zones), len(feet))


def polygon_area_m2(polygon: np.ndarray) -> float:
    """Area of a ground polygon (shoelace), square metres, whichever way it turns."""
    x, y = _as_points(polygon, "polygon corners").T
    # Corners far out (a config's 1e308) overflow to inf, which the config check refuses: no warning on stderr.
    with np.errstate(over="ignore", invalid="ignore"):
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def zone_area_m2(zone: ZoneGeometry, H: np.ndarray | None = None) -> float:
    """Ground area of a zone; a pixel zone needs the calibration. Exact: a homography keeps edges straight."""
    if zone.units == "m":
        return polygon_area_m2(zone.corners)
    if H is None:
        raise SanitaryError(f"zone '{zone.name}' is in pixels; its area in m² needs a ground calibration")
    corners = _mapped(np.asarray(H, np.float64), zone.corners, f"zone '{zone.name}' corners")[0]
    return polygon_area_m2(corners)


# ---------------------------------------------------------------- Tsai calibration import


@dataclass(frozen=True, eq=False)
class TsaiCamera:
    """A Tsai (1987) calibration as in Reg Willson's implementation: world units mm, one radial term kappa1."""

    width: int  # image size the calibration was made at
    height: int
    dpx: float  # effective sensor element size along x (mm per pixel): dx * ncx / nfx
    dpy: float
    focal: float  # mm
    kappa1: float  # 1 / mm²
    cx: float  # principal point, pixels
    cy: float
    sx: float  # horizontal scale factor
    R: np.ndarray  # (3, 3) world -> camera
    T: np.ndarray  # (3,) mm

    def project(self, world_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) mm to pixels (N, 2) and their depth in front of the camera (N,) mm."""
        cam = np.asarray(world_mm, np.float64) @ self.R.T + self.T
        undistorted = self.focal * cam[:, :2] / cam[:, 2:3]
        r_u = np.hypot(*undistorted.T)
        # Tsai defines the distortion backwards, Xu = Xd (1 + kappa1 rd²): solve rd from ru by Newton (monotone
        # for kappa1 >= 0 and, in the image, for the small negative values real lenses have).
        r_d = r_u.copy()
        for _ in range(50):
            r_d -= (r_d * (1 + self.kappa1 * r_d**2) - r_u) / (1 + 3 * self.kappa1 * r_d**2)
        with np.errstate(invalid="ignore", divide="ignore"):
            distorted = undistorted * np.where(r_u > 0, r_d / r_u, 1.0)[:, None]
        pixels = np.stack([distorted[:, 0] * self.sx / self.dpx + self.cx, distorted[:, 1] / self.dpy + self.cy], 1)
        return pixels, cam[:, 2]

    def ground_points(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) to the ground plane Z = 0, mm (N, 2), and the ray length factor (> 0 in front)."""
        distorted = np.stack(
            [(pixels[:, 0] - self.cx) * self.dpx / self.sx, (pixels[:, 1] - self.cy) * self.dpy], axis=1
        )
        undistorted = distorted * (1 + self.kappa1 * (distorted**2).sum(axis=1, keepdims=True))
        rays = np.column_stack([undistorted, np.full(len(pixels), self.focal)]) @ self.R
        centre = -self.R.T @ self.T
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -centre[2] / rays[:, 2]
        return centre[:2] + t[:, None] * rays[:, :2], t


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """Willson's Tsai rotation from its three Euler angles (radians)."""
    sa, ca, sb, cb, sg, cg = math.sin(rx), math.cos(rx), math.sin(ry), math.cos(ry), math.sin(rz), math.cos(rz)
    return np.array(
        [
            [cb * cg, cg * sa * sb - ca * sg, sa * sg + ca * cg * sb],
            [cb * sg, sa * sb * sg + ca * cg, ca * sb * sg - cg * sa],
            [-sb, cb * sa, ca * cb],
        ]
    )


def read_tsai(xml_path: Path) -> TsaiCamera:
    """A Tsai calibration XML (Geometry, Intrinsic, Extrinsic elements, as shipped with PETS 2009)."""
    try:
        root = ET.parse(xml_path).getroot()
    except OSError:
        raise SanitaryError(f"{xml_path}: Tsai calibration not found; pass the camera's calibration XML") from None
    except ET.ParseError as exc:
        raise SanitaryError(f"{xml_path}: not valid XML ({exc}); pass a Tsai calibration file") from None

    def values(tag: str, keys: str) -> list[float]:
        element = root.find(tag)
        try:
            return [float(element.attrib[k]) for k in keys.split()]  # type: ignore[union-attr]
        except (AttributeError, KeyError, ValueError):
            raise SanitaryError(
                f"{xml_path}: <{tag}> must carry numeric attributes {keys}; is this a Tsai calibration?"
            ) from None

    width, height, ncx, nfx, dx, dy = values("Geometry", "width height ncx nfx dx dy")
    focal, kappa1, cx, cy, sx = values("Intrinsic", "focal kappa1 cx cy sx")
    tx, ty, tz, rx, ry, rz = values("Extrinsic", "tx ty tz rx ry rz")
    return TsaiCamera(
        width=int(width),
        height=int(height),
        dpx=dx * ncx / nfx,
        dpy=dy,
        focal=focal,
        kappa1=kappa1,
        cx=cx,
        cy=cy,
        sx=sx,
        R=_rotation(rx, ry, rz),
        T=np.array([tx, ty, tz]),
    )


def tsai_ground_homography(xml_path: Path, width: int, height: int) -> np.ndarray:
    """The ground-plane homography (image pixels at `width` x `height` -> ground metres) of a Tsai calibration.

    Lens distortion makes the true mapping slightly curved, so the homography is the least-squares one over the
    ground the image sees: a grid of pixels is cast onto the ground (Z = 0), those ground points are projected
    back through the full Tsai model, and the ground -> image homography is fitted to them, its residuals in
    pixels (where detections err; metre residuals would let the far, stretched rows dominate), then inverted.
    """
    if width <= 0 or height <= 0:
        raise SanitaryError(f"frame size {width}x{height} must be positive; pass the footage's width and height")
    cam = read_tsai(xml_path)
    xs = np.linspace(0, cam.width, TSAI_GRID)
    ys = np.linspace(0, cam.height, max(2, round(TSAI_GRID * cam.height / cam.width)))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    ground_mm, t = cam.ground_points(grid)
    centre = -cam.R.T @ cam.T
    seen = (t > 0) & (np.hypot(*(ground_mm - centre[:2]).T) <= 1000 * TSAI_MAX_RANGE_M)
    if seen.sum() < 4 * MIN_PAIRS:
        raise SanitaryError(
            f"{xml_path}: the calibrated camera sees almost no ground within {TSAI_MAX_RANGE_M:g} m; "
            "is the world's Z = 0 the ground plane?"
        )
    world = np.column_stack([ground_mm[seen], np.zeros(seen.sum())])
    pixels, _ = cam.project(world)
    ground_to_image = normalised_dlt(world[:, :2] / 1000, pixels)
    to_calibrated = np.diag([cam.width / width, cam.height / height, 1.0])
    return _unit_scale(
        np.linalg.inv(ground_to_image) @ to_calibrated, grid[seen] * [width / cam.width, height / cam.height]
    )
