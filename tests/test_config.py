from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sanitary.config import load_camera, parse_start
from sanitary.errors import SanitaryError
from tests.conftest import PETS_CAMERA

BASE = 'camera_id = "c1"\nsite_id = "s1"\nsite_kind = "bus"\ntimezone = "Europe/Paris"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cam.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    cam = load_camera(PETS_CAMERA)
    assert cam.camera_id == "pets2009-view001"
    assert cam.time.fps == 7.0
    assert cam.detection.walkable[0] == (0.0, 95.0)
    assert cam.detection.model == "bytetrack-nano"


def test_defaults(tmp_path: Path) -> None:
    cam = load_camera(write(tmp_path, BASE))
    assert cam.time.window_seconds == 60
    assert cam.detection.walkable == []
    assert (cam.detection.model, cam.detection.person_score) == ("bytetrack-nano", 0.4)
    assert cam.site_kind == "bus"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 3\n", "unknown key 'colour' in the top level"),
        ("[detection]\nperson_scor = 0.3\n", "unknown key 'detection.person_scor' in [detection]"),
        ("[detection]\nperson_score = 1.5\n", "detection.person_score must be between 0 and 1"),
        ("[detection]\nperson_score = 'high'\n", "'detection.person_score' is 'high'"),
        ("[time]\nwindow_seconds = 0\n", "time.window_seconds must be between 1 and 86400"),
        ("[masks]\nevery_s = -1\n", "masks.every_s must be between 0 (every face every frame) and 86400 seconds"),
        ("[time]\nstart = 'yesterday'\n", "start time 'yesterday' is not ISO 8601"),
        ("[detection]\nwalkable = [[0, 0], [1, 1]]\n", "walkable needs at least 3 points"),
        (
            "[detection]\nmodel = 'ssdlite'\n",
            "'detection.model' is 'ssdlite'; it must be one of 'bytetrack-nano', 'yolox-nano-coco'",
        ),
        (
            "[detection]\ntile_px = 300\n",
            "'detection.tile_px' is no longer used: the person detector now sees the whole frame in one pass",
        ),
        ("[detection]\nfull_frame = false\n", "'detection.full_frame' is no longer used"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(SanitaryError, match=r".*") as err:
        load_camera(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_kind_timezone_missing_and_syntax(tmp_path: Path) -> None:
    for text, message in [
        (BASE.replace('"bus"', '"tram"'), "it must be one of 'market', 'bus'"),
        (BASE.replace("Europe/Paris", "Mars/Olympus"), "timezone 'Mars/Olympus' is unknown"),
        (BASE.replace('site_id = "s1"\n', ""), "missing required key 'site_id'"),
        (BASE + "[time\n", "not valid TOML"),
    ]:
        with pytest.raises(SanitaryError) as err:
            load_camera(write(tmp_path, text))
        assert message in str(err.value)
    with pytest.raises(SanitaryError, match="camera config not found"):
        load_camera(tmp_path / "absent.toml")


def test_naive_start_is_camera_local() -> None:
    cam = load_camera(PETS_CAMERA)
    start = parse_start("2021-07-01T08:00:00", cam.tz, "x")
    assert start.utcoffset().total_seconds() == 3600  # British Summer Time


PETS_H = (
    "[[0.0005760585816730672, -0.006504966208065933, 0.590408911911745], "
    "[-0.0015065192403842494, -0.004308649426213933, 0.8070334560520008], "
    "[9.957419396442306e-06, 0.00021025834216627581, 0.007126903343991559]]"
)
CALIBRATED = "[calibration]\nimage_size = [480, 360]\nhomography = {}\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Issue 16, point 3: a broken homography was accepted, and distancing stored as measured zeros.
        (CALIBRATED.format("[[nan, 0, 0], [0, 1, 0], [0, 0, 1]]"), "'calibration.homography[0][0]' is nan"),
        (CALIBRATED.format("[[inf, 0, 0], [0, 1, 0], [0, 0, 1]]"), "'calibration.homography[0][0]' is inf"),
        (CALIBRATED.format("[[0, 0, 0], [0, 0, 0], [0, 0, 0]]"), "calibration.homography is all zeros"),
        (CALIBRATED.format("[[1, 0, 0], [2, 0, 0], [0, 0, 1]]"), "maps the image onto a line"),
        # Point 4: values that passed validation and crashed later, some after the file was analysed.
        (CALIBRATED.format("[[1, 0, 0], [0, 1], [0, 0, 1]]"), "calibration.homography must be 3 rows of 3 numbers"),
        (CALIBRATED.format("[[1, 0, 0], [0, 1, 0], [0, -1, 100]]"), "horizon of the calibration crosses"),
        ("[detection]\nwalkable = [[0, 0], [nan, 0], [1, 1]]\n", "'detection.walkable[1]' is nan"),
        ("[detection]\nwalkable = [[0, 0], [5, 5], [9, 9]]\n", "walkable needs at least 3 points enclosing an area"),
        ("[tracking]\nmax_lost_s = inf\n", "'tracking.max_lost_s' is inf; it must be a finite number"),
        ("[tracking]\nmax_lost_s = 1e308\n", "tracking.max_lost_s must be between 0 and 3600"),
        ("[time]\nwindow_seconds = 9999999999999\n", "time.window_seconds must be between 1 and 86400"),
        ("[time]\nwindow_seconds = 99999999999999999999\n", "no setting needs a number this large"),
        ("[time]\nstart = '9999-01-01T00:00:00'\n", "9999-01-01T00:00:00 is not between 1970 and 2100"),
        ("[privacy]\nretention_days = inf\n", "'privacy.retention_days' is inf"),
        ("[privacy]\nretention_days = 1e6\n", "privacy.retention_days must be >= 0 (0: keep) and at most 36500"),
        ("[[privacy_masks]]\npolygon = [[0, 0], [1, 0], [2, 0]]\n", "privacy_masks polygon needs at least 3 points"),
        ("[[alerts]]\nname = 'a'\nmeasure = 'occupancy'\nabove = 1\ncooldown_s = 1e308\n", "cooldown_s must be"),
        ("[calibration]\nimage_size = [0, 360]\n", "calibration.image_size must be [width, height]"),
        ("[time]\nfilename_pattern = ''\n", "time.filename_pattern is empty"),
    ],
)
def test_values_that_crashed_later_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(SanitaryError) as err:
        load_camera(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'camera_id = " "\nsite_id = "s1"\nsite_kind = "bus"\n')
    with pytest.raises(SanitaryError, match="camera_id is empty"):
        load_camera(path)


def test_a_calibrated_camera_loads(tmp_path: Path) -> None:
    cam = load_camera(
        write(
            tmp_path,
            BASE + CALIBRATED.format(PETS_H) + "[detection]\nwalkable = [[0, 95], [480, 95], [480, 360], [0, 360]]\n",
        )
    )
    assert cam.ground_homography() is not None


@pytest.mark.parametrize("text", ["9999-01-01T00:00:00", "0001-01-01", "1969-12-31T23:59:59+00:00"])
def test_start_outside_the_span_is_refused(text: str) -> None:
    with pytest.raises(SanitaryError, match=r"--start: .* is not between 1970 and 2100; check the year"):
        parse_start(text, ZoneInfo("UTC"), "--start")
