"""Head-shake opt-out: the shake pattern with exact numbers, and the whole chain on real faces turned to known yaws.

The real-face tests use the construction of benchmarks/headshake_benchmark.py (a face photo mapped on a 3D head,
turned, then read by the pipeline's own face detector) on a few faces; the benchmark runs it on 40.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from benchmarks.headshake_benchmark import DATA, DETECTION, SHAKES, Head, movements, pick_heads, read_yaw, triggered
from sanitary.config import OptOutConfig
from sanitary.perception.faces import FaceDetector
from sanitary.tracking.headshake import NOSE_DEPTH, ShakeDetector, yaw_from_landmarks

CONFIG = OptOutConfig(yaw_deg=15.0, max_shake_s=2.0)
FRONTAL = np.array([[-30, 0], [30, 0], [0, 30], [-25, 60], [25, 60]], np.float64)  # eyes 60 px apart


def fired_at(yaws: Sequence[float | None], fps: float, config: OptOutConfig = CONFIG) -> list[float]:
    """Times at which a fresh ShakeDetector fed `yaws` at `fps` reports a shake."""
    detector = ShakeDetector(config)
    return [round(k / fps, 6) for k, yaw in enumerate(yaws) if detector.update(k / fps, yaw)]


def sine(amplitude: float, period_s: float, fps: float, duration_s: float) -> list[float]:
    return [amplitude * math.sin(2 * math.pi * k / fps / period_s) for k in range(round(duration_s * fps) + 1)]


# ---------------------------------------------------------------- yaw_from_landmarks


def turned(yaw_deg: float) -> np.ndarray:
    """FRONTAL with the nose where the estimator's own model puts it at this yaw."""
    marks = FRONTAL.copy()
    marks[2, 0] = NOSE_DEPTH * math.tan(math.radians(yaw_deg)) * 60  # the other four are centred on x = 0
    return marks


def test_yaw_is_signed_scale_and_roll_free() -> None:
    assert yaw_from_landmarks(FRONTAL[None])[0] == pytest.approx(0.0, abs=1e-9)
    assert yaw_from_landmarks(turned(20.0)[None])[0] == pytest.approx(20.0)
    # Positive: the nose towards the image's right.
    assert yaw_from_landmarks(turned(-35.0)[None])[0] == pytest.approx(-35.0)
    roll = np.radians(40.0)
    rotation = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    moved = 0.5 * turned(20.0) @ rotation.T + [100, 50]
    both = np.stack([turned(20.0), moved]).astype(np.float32)
    assert yaw_from_landmarks(both) == pytest.approx([20.0, 20.0], abs=1e-3)


def test_nodding_moves_the_nose_along_the_face_not_across() -> None:
    nod = FRONTAL.copy()
    nod[2, 1] += 12  # the nose down towards the mouth, as when the head tilts forward
    assert yaw_from_landmarks(nod[None])[0] == pytest.approx(0.0, abs=1e-9)


def test_degenerate_points_are_nan() -> None:
    one_eye = FRONTAL.copy()
    one_eye[1] = one_eye[0]
    missing = FRONTAL.copy()
    missing[2, 0] = np.nan
    yaw = yaw_from_landmarks(np.stack([one_eye, missing, FRONTAL]))
    assert np.isnan(yaw[:2]).all() and yaw[2] == pytest.approx(0.0, abs=1e-9)
    assert yaw_from_landmarks(np.zeros((0, 5, 2), np.float32)).shape == (0,)


# ---------------------------------------------------------------- ShakeDetector


def test_shake_at_5_fps_fires_once_on_the_third_excursion() -> None:
    # 30 sin(2 pi t) at 5 fps: 0, 28.5, 17.6, -17.6, -28.5, 0, 28.5, 17.6, -17.6, ...; excursions start at
    # 0.2 (+), 0.6 (-) and 1.2 (+): one period, 1.0 s.
    assert fired_at([*sine(30, 1.0, 5, 1.4), 0, 0], fps=5) == [1.2]
    assert fired_at([-y for y in sine(30, 1.0, 5, 1.4)], fps=5) == [1.2]  # right-left-right as well


def test_shake_at_10_fps_fires_once() -> None:
    # Beyond 15 deg first at t = 0.1 (+17.6), 0.6 (-17.6), 1.1 (+17.6).
    assert fired_at([*sine(30, 1.0, 10, 1.5), *[0.0] * 10], fps=10) == [1.1]


def test_dropped_frames_and_frames_in_between_do_not_break_a_shake() -> None:
    yaws: list[float | None] = [0, 28.5, None, float("nan"), -28.5, None, 3.0, 28.5, 0]
    assert fired_at(yaws, fps=5) == [1.4]


def test_shaking_on_needs_three_new_excursions() -> None:
    # + - + fires; the + frames after it belong to that shake; - + is not enough, - + - is a second shake.
    yaws = [20, -20, 20, 20, -20, 20, 0, 0, -20]
    assert fired_at(yaws, fps=5) == [0.4, 1.6]


def test_thresholds_are_strict_on_the_angle_and_inclusive_on_the_time() -> None:
    assert fired_at([15.0, -15.0, 15.0], fps=5) == []
    # Excursions starting at 0 and at exactly max_shake_s.
    assert fired_at([20, -20, 0, 0, 0, 0, 0, 0, 0, 0, 20], fps=5) == [2.0]
    assert fired_at([20, -20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20], fps=5) == []


@pytest.mark.parametrize(
    ("name", "yaws", "fps"),
    [
        ("single turn", [0, 10, 25, 35, 25, 10, 0, 0, 0, 0], 5),
        ("looks aside, then the other way", [0, 30, 30, 0, -30, -30, 0, 0], 5),
        ("slow shake, 2.4 s from first to third excursion", sine(30, 2.4, 5, 6.0), 5),
        ("nod: the yaw stays near 0", [0, 2, -3, 4, -2, 1, -4, 3, 0, -1] * 3, 10),
        ("steady profile walking past", [30.0] * 30, 7),
        ("steady profile, face lost now and then", [32, None, 28, 31, None, None, 29, 33] * 3, 7),
        ("small jitter around 0", [10, -10] * 20, 10),
    ],
)
def test_not_a_shake(name: str, yaws: list[float | None], fps: float) -> None:
    assert fired_at(yaws, fps) == [], name


def test_repeated_or_out_of_order_times_are_ignored() -> None:
    detector = ShakeDetector(CONFIG)
    assert [detector.update(t, y) for t, y in [(0.0, 20), (0.4, -20), (0.4, 20), (0.2, 20), (0.8, 20)]] == [
        False,
        False,
        False,
        False,
        True,
    ]


# ---------------------------------------------------------------- real faces

WITHOUT_MASK, WITH_MASK = 5, 2
FPS = 7.0


@pytest.fixture(scope="module")
def heads() -> tuple[FaceDetector, list[Head]]:
    if not (DATA / "annotations").is_dir():
        pytest.skip(f"face-mask photos not found at {DATA} (see ../shared/datasets/README.md)")
    detector = FaceDetector(DETECTION)
    chosen = pick_heads(detector, DATA, {"without_mask": WITHOUT_MASK, "with_mask": WITH_MASK})
    assert [h.label for h in chosen].count("without_mask") == WITHOUT_MASK
    return detector, chosen


def test_yaw_read_on_real_faces_follows_the_true_yaw(heads: tuple[FaceDetector, list[Head]]) -> None:
    detector, chosen = heads
    angles = (-30, -15, 0, 15, 30)
    bare = [h for h in chosen if h.label == "without_mask"]
    read = np.array([[read_yaw(detector, h, a, 0) for a in angles] for h in bare], np.float64)
    assert np.isfinite(read).mean() >= 0.9
    true = np.broadcast_to(np.array(angles, np.float64), read.shape)
    ok = np.isfinite(read)
    corr = np.corrcoef(true[ok], read[ok])[0, 1]
    assert corr >= 0.9, f"correlation {corr:.3f}"
    assert (np.sign(read[ok & (np.abs(true) >= 15)]) == np.sign(true[ok & (np.abs(true) >= 15)])).all()
    assert (np.diff(np.nanmean(read, axis=0)) > 5).all()  # the mean over faces rises with every step of 15 deg
    nodding = [read_yaw(detector, h, 0, p) for h in bare for p in (-20, 20)]
    assert all(r is not None and abs(r) < CONFIG.yaw_deg for r in nodding)


@pytest.mark.slow
def test_shakes_on_real_faces_fire_and_nothing_else_does(heads: tuple[FaceDetector, list[Head]]) -> None:
    detector, chosen = heads
    fired: dict[str, list[str]] = {}
    for i, head in enumerate(chosen):
        for move, poses in movements(FPS, phase_s=(i * 0.37) % (1 / FPS), side=1 if i % 2 == 0 else -1).items():
            if move in SHAKES and move != "shake":
                continue  # the benchmark measures the faster and smaller shakes; here the one of the brief
            if triggered(detector, head, poses, CONFIG)[0]:
                fired.setdefault(move, []).append(f"{head.name} ({head.label})")
    bare_shakes = [name for name in fired.get("shake", []) if "without_mask" in name]
    assert len(bare_shakes) >= WITHOUT_MASK - 1, f"shakes found on {bare_shakes}"
    assert set(fired) <= {"shake"}, f"fired on non-shakes: {fired}"
