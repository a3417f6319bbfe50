"""The config's pixels fitted to the frames read (issue 16, point 2): rescaled for footage of the same shape,
refused for another shape, for geometry outside the frame, and for frames too small to analyse."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sanitary.capture.sources import Frame
from sanitary.config import CalibrationConfig, PrivacyConfig, ZoneConfig, load_camera
from sanitary.errors import SanitaryError
from sanitary.geometry.homography import to_ground
from sanitary.runtime.analyser import FrameAnalyser
from sanitary.runtime.frame_fit import fit_to_frame
from sanitary.runtime.session import AnalysisSession
from tests.conftest import PETS_CAMERA
from tests.runtime.test_session import (
    CAMERA,
    CONFUSION,
    START,
    FakeFaces,
    FakeMasks,
    FakePeople,
    FakeTracker,
    Seen,
)


def test_the_pets_config_halved_for_the_clip_resized_to_240x180() -> None:
    pets = load_camera(PETS_CAMERA)
    half = fit_to_frame(pets, 240, 180)
    assert half.calibration.image_size == [240, 180]
    assert half.detection.walkable == [(0.0, 47.5), (240.0, 47.5), (240.0, 180.0), (0.0, 180.0)]
    assert (half.lines[0].a, half.lines[0].b) == ((110.0, 47.5), (110.0, 180.0))
    assert half.zones == pets.zones  # in metres: the ground does not change with the pixels
    feet = np.array([[46.1, 132.3], [240.1, 133.7], [425.5, 356.2]])
    np.testing.assert_allclose(
        to_ground(half.ground_homography(), feet / 2), to_ground(pets.ground_homography(), feet), rtol=1e-12
    )


def test_frames_of_the_configured_size_keep_the_config() -> None:
    pets = load_camera(PETS_CAMERA)
    assert fit_to_frame(pets, 480, 360) is pets


@pytest.mark.parametrize(("width", "height"), [(480, 270), (640, 360), (360, 480)])
def test_frames_of_another_shape_are_refused(width: int, height: int) -> None:
    with pytest.raises(SanitaryError, match=rf"image_size is 480x360 but the frames are {width}x{height}, another"):
        fit_to_frame(load_camera(PETS_CAMERA), width, height)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (31, 200), (200, 31)])
def test_frames_too_small_are_refused(width: int, height: int) -> None:
    with pytest.raises(SanitaryError, match=rf"the frames are {width}x{height} pixels, too small"):
        fit_to_frame(CAMERA, width, height)


def test_without_image_size_pixel_geometry_must_lie_in_the_frame() -> None:
    zone = ZoneConfig("door", [(0.0, 0.0), (300.0, 0.0), (300.0, 200.0)], units="px")
    camera = dataclasses.replace(CAMERA, zones=[zone])
    assert fit_to_frame(camera, 300, 200) is camera
    with pytest.raises(SanitaryError, match=r"zone 'door' has points outside the 240x180 frames; set calibration"):
        fit_to_frame(camera, 240, 180)


def test_the_analyser_counts_zones_in_the_pixels_of_the_frames_it_reads() -> None:
    # The zone was drawn on 160x80 frames: x 0-20 there is x 0-10 on the 80x40 frames read, where person 1 stands
    # (feet x 4) and person 2 (feet x 14) does not; unfitted, both were counted in it.
    script = [[Seen(1), Seen(2)]] * 3
    zone = ZoneConfig("left", [(0.0, 0.0), (20.0, 0.0), (20.0, 80.0), (0.0, 80.0)], units="px")
    camera = dataclasses.replace(
        CAMERA,
        zones=[zone],
        calibration=CalibrationConfig(image_size=[160, 80]),
        privacy=PrivacyConfig(k_min=1),  # two people: their zone counts stand however small the group
    )
    analyser = FrameAnalyser(
        camera, people=FakePeople(script), faces=FakeFaces(script), masks=FakeMasks(script), tracker=FakeTracker(script)
    )
    s = AnalysisSession(camera, analyser, START, source="test", confusion=CONFUSION)
    for i in range(len(script)):
        s.analyse(Frame(i, float(i), np.zeros((40, 80, 3), np.uint8), None))
    s.close()
    (window,) = s.windows(3.0)
    assert [(z.people_sum, z.people_max) for z in window.zones] == [(3, 1)]


def test_a_frame_of_another_shape_in_a_folder_fails_its_file() -> None:
    script = [[Seen(1)]] * 2
    camera = dataclasses.replace(CAMERA, calibration=CalibrationConfig(image_size=[80, 40]))
    analyser = FrameAnalyser(
        camera, people=FakePeople(script), faces=FakeFaces(script), masks=FakeMasks(script), tracker=FakeTracker(script)
    )
    analyser(Frame(0, 0.0, np.zeros((40, 80, 3), np.uint8), "a.jpg"))
    with pytest.raises(SanitaryError, match="the frames are 40x40, another shape"):
        analyser(Frame(1, 1.0, np.zeros((40, 40, 3), np.uint8), "b.jpg"))
