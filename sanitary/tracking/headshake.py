"""The head-shake opt-out: reading a "no" from the face landmarks the pipeline already has.

A person who does not want to be counted shakes their head; nothing is asked of them beyond that, and nothing
about them is kept to recognise them later. The yaw comes from the detector's five points (no extra model, no
extra pixels looked at): the nose sits in front of the eyes and mouth, so when the head turns it slides sideways
relative to them by depth x sin(yaw), while the eyes' distance shrinks by cos(yaw). The shake itself is then a
pattern in a short yaw series, read per tracked person.
"""

from __future__ import annotations

import math

import numpy as np

from sanitary.config import OptOutConfig

# How far the detector's nose point moves against the other four per unit of tan(yaw), in eye distances. A real
# nose tip stands ~0.5 eye distances in front of the eyes and mouth corners (anthropometric means), but CenterFace
# pulls its points part of the way back towards a frontal face; on real faces turned to known yaws
# (benchmarks/headshake_benchmark.py) the error is smallest at 0.38, which makes the estimate read in degrees.
NOSE_DEPTH = 0.38
MIN_EYE_PX = 1e-3  # eyes closer than this are one point: no direction to measure along


def yaw_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Signed yaw in degrees, (N, 5, 2) landmarks (eyes, nose, mouth corners, image pixels) -> (N,).

    Positive: the nose has moved towards the image's right (+x), i.e. the face turns to the person's own left
    for a camera facing them; 0 is frontal. NaN where the points are degenerate (eyes on one pixel, not finite).

    The nose's offset from the centre of the four other points is measured along the eye line, so a tilted
    (rolled) head reads the same, and in eye distances, so the face's size does not matter. Weak perspective
    then gives offset = NOSE_DEPTH * tan(yaw). Nodding moves the nose up and down, not along the eye line. Under
    a mask the detector guesses where the nose is: the error is about twice that on bare faces (~10 deg, not ~5).
    """
    marks = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    left_eye, right_eye, nose = marks[:, 0], marks[:, 1], marks[:, 2]
    across = right_eye - left_eye
    eye_px = np.linalg.norm(across, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = across / eye_px[:, None]
        centre = marks[:, [0, 1, 3, 4]].mean(axis=1)
        offset = np.einsum("ij,ij->i", nose - centre, unit) / eye_px
        yaw = np.degrees(np.arctan(offset / NOSE_DEPTH))
    yaw[~(eye_px > MIN_EYE_PX) | ~np.isfinite(yaw)] = np.nan
    return yaw


class ShakeDetector:
    """One per tracked person: True once three alternating yaw excursions (L-R-L or R-L-R) fit in max_shake_s.

    An excursion is a run of frames beyond +yaw_deg (or beyond -yaw_deg); frames in between, and frames where no
    face was read, neither end nor break it, so a dropped frame or two costs nothing. The shake's duration runs
    from the first excursion's start to the third's: for a periodic shake that is exactly one period, whatever
    the amplitude. A single look aside and back is one excursion; a steady profile (walking past) is one long
    excursion; a nod keeps the yaw near 0; a slow shake takes longer than max_shake_s. Yaw is absolute, not
    relative to the person's own baseline: someone walking past side-on is one long excursion already, so a
    baseline would only add a shake made while facing well away from the camera, at the price of a baseline that
    drifts as the walker's angle to the camera changes, and that the shake itself pulls.

    After a shake the history is cleared: shaking on needs three new excursions to report again.
    """

    def __init__(self, config: OptOutConfig) -> None:
        self.yaw_deg = config.yaw_deg
        self.max_shake_s = config.max_shake_s
        self._side = 0  # the side of the latest excursion: +1 beyond +yaw_deg, -1 beyond -yaw_deg, 0 none yet
        self._starts: list[float] = []  # start times of the latest alternating excursions, oldest first
        self._last_t = -math.inf

    def update(self, t: float, yaw_deg: float | None) -> bool:
        """Feed one analysed frame (t in seconds, increasing); True on the frame that completes a shake."""
        if t <= self._last_t:
            return False  # a repeated or out-of-order frame says nothing new
        self._last_t = t
        if yaw_deg is None or not math.isfinite(yaw_deg) or abs(yaw_deg) <= self.yaw_deg:
            return False
        side = 1 if yaw_deg > 0 else -1
        if side == self._side:
            return False
        self._side = side
        self._starts = [*self._starts[-2:], t]
        if len(self._starts) == 3 and t - self._starts[0] <= self.max_shake_s:
            # The excursion under way was part of this shake, so it cannot start the next one.
            self._starts = []
            return True
        return False
