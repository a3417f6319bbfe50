import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import distancing_window, zone_windows
from sanitary.config import DistancingConfig
from sanitary.geometry.distancing import FrameDistancing, measure
from sanitary.geometry.homography import ZoneGeometry
from sanitary.perception.boxes import Detections

# 1 px = 1 cm on the ground, no perspective: distances are exact and easy to check.
CM = np.diag([0.01, 0.01, 1.0])


def people(feet: list[tuple[float, float]], height: float = 10.0) -> Detections:
    boxes = np.array([[x - 2, y - height, x + 2, y] for x, y in feet], np.float32).reshape(-1, 4)
    return Detections(boxes, np.ones(len(boxes), np.float32))


def test_close_pairs_and_nearest_neighbours_exact() -> None:
    # A and B 80 cm apart, C 3 m from B: one close pair at 1 m.
    frame = measure(people([(100, 100), (180, 100), (480, 100)]), CM, (), DistancingConfig())
    assert (frame.close_pairs, frame.people_close) == (1, 2)
    assert frame.nearest_m == pytest.approx((0.8, 0.8, 3.0))


def test_confidence_demands_a_margin() -> None:
    # 95 cm apart with a feet sigma of 6% of a 100 px box (6 cm each): close at 0.5, not sure at 0.9.
    group = people([(100, 100), (195, 100)], height=100.0)
    assert measure(group, CM, (), DistancingConfig(confidence=0.5)).close_pairs == 1
    assert measure(group, CM, (), DistancingConfig(confidence=0.9)).close_pairs == 0


def test_alone_or_nobody_has_no_distance() -> None:
    assert measure(people([(10, 10)]), CM, (), DistancingConfig()) == FrameDistancing(0, 0, (), ())
    assert measure(people([]), CM, (), DistancingConfig()) == FrameDistancing(0, 0, (), ())


def test_zones_in_metres_and_pixels() -> None:
    zones = (
        ZoneGeometry("left-metre", ((0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)), "m"),
        ZoneGeometry("right-pixels", ((250.0, 0.0), (500.0, 0.0), (500.0, 200.0), (250.0, 200.0)), "px"),
    )
    frame = measure(people([(100, 100), (180, 100), (480, 100)]), CM, zones, DistancingConfig())
    assert frame.zone_people == (2, 1)
    uncalibrated = measure(people([(100, 100), (480, 100)]), None, zones[1:], DistancingConfig())
    assert uncalibrated == FrameDistancing(0, 0, (), (1,), measured=False)


def test_people_beyond_the_horizon_are_left_out() -> None:
    # Ground at infinity along y = 100 px: a "person" above it (a false detection in the sky) has no place.
    tilted = np.array([[0.01, 0, 0], [0, 0.01, 0], [0, -0.01, 1.0]])
    frame = measure(people([(100, 50), (130, 50), (100, 150)]), tilted, (), DistancingConfig())
    assert len(frame.nearest_m) == 2


def test_window_distancing_and_zones_exact() -> None:
    def obs(i: int, close: int, in_pair: int, nearest: tuple[float, ...], zone: tuple[int, ...]) -> Observation:
        return Observation(i, float(i), len(nearest), MaskCounts(), FrameDistancing(close, in_pair, nearest, zone))

    frames = [obs(0, 1, 2, (0.8, 0.8, 3.0), (2,)), obs(1, 0, 0, (1.5, 1.5), (1,)), obs(2, 0, 0, (), (0,))]
    window = distancing_window(frames)
    assert window is not None
    assert (window.close_pair_frames, window.close_pairs_sum, window.people_close_sum) == (1, 1, 2)
    assert window.nearest_min_m == 0.8 and window.nearest_median_m == 1.5
    assert zone_windows(frames, (("z", 4.0),))[0].people_sum == 3
    assert zone_windows(frames, (("z", 4.0),))[0].people_max == 2
    unmeasured = [Observation(0, 0.0, 1, MaskCounts(), FrameDistancing(0, 0, (), (), measured=False))]
    assert distancing_window(unmeasured) is None
